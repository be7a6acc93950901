"""Headless Chromium for end-to-end tests, driven over the DevTools protocol (CDP).

A deliberately small client: the system ``chromium`` (Debian package) is started with
``--remote-debugging-port=0`` and spoken to with ``simple_websocket``, which the gateway already
depends on. It needs only a few stable CDP methods (Target.*, Runtime.evaluate), so it does not
break when Chromium updates, and it downloads no browser build of its own (Playwright's and
Pyppeteer's installers do, and cannot here). Protocol reference:
https://chromedevtools.github.io/devtools-protocol/
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_websocket import Client

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root there is no sandbox to use
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm; use /tmp instead
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)
START_TIMEOUT_SECONDS = 20.0
COMMAND_TIMEOUT_SECONDS = 10.0


class BrowserError(AssertionError):
    """Chromium or a page did not do what was asked."""


def find_chromium() -> str | None:
    """Return the path of an installed Chromium, or None."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


class DevTools:
    """One CDP WebSocket: send commands, wait for their answers, keep the events seen."""

    def __init__(self, url: str):
        self.ws = Client.connect(url, max_message_size=64 * 1024 * 1024)
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def call(self, method: str, timeout: float = COMMAND_TIMEOUT_SECONDS, **params) -> dict:
        """Run ``method`` and return its result, or raise BrowserError."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            raw = self.ws.receive(timeout=remaining)
            message = json.loads(raw) if raw else {}
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self.events.append(message)
        raise BrowserError(f"{method} got no answer within {timeout}s")

    def close(self) -> None:
        self.ws.close()


class Page:
    """A tab of its own browser context (own storage), driven by JavaScript expressions."""

    def __init__(self, devtools: DevTools, target_id: str):
        self.devtools = devtools
        self.target_id = target_id
        for domain in ("Runtime", "Log", "Page"):
            devtools.call(f"{domain}.enable")

    def goto(self, url: str) -> None:
        """Open ``url`` and wait until the document has loaded."""
        self.devtools.call("Page.navigate", url=url)
        self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def evaluate(self, expression: str) -> Any:
        """Return the JSON value of ``expression`` in the page (promises are awaited)."""
        result = self.devtools.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description", details["text"]))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """Poll ``expression`` until its value is truthy; return that value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise BrowserError(
                    f"still false after {timeout}s: {expression}\nproblems: {self.problems()}"
                )
            time.sleep(interval)

    def fill(self, element_id: str, text: str) -> None:
        """Set the value of the field ``#element_id`` as if typed."""
        self.evaluate(
            f"(() => {{ const field = document.getElementById({json.dumps(element_id)});"
            f" field.value = {json.dumps(text)};"
            " field.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )

    def click(self, element_id: str) -> None:
        """Click ``#element_id`` (a submit button submits its form, checking it first)."""
        self.evaluate(f"document.getElementById({json.dumps(element_id)}).click()")

    def choose_files(self, element_id: str, paths: list[Path]) -> None:
        """Put ``paths`` into the file input ``#element_id``, as a person choosing them would."""
        self.devtools.call("DOM.enable")
        root = self.devtools.call("DOM.getDocument")["root"]["nodeId"]
        node = self.devtools.call("DOM.querySelector", nodeId=root, selector=f"#{element_id}")
        self.devtools.call(
            "DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(p) for p in paths]
        )

    def text(self, element_id: str) -> str:
        return self.evaluate(f"document.getElementById({json.dumps(element_id)}).textContent")

    def problems(self) -> list[str]:
        """Return the uncaught exceptions, console errors and browser errors logged so far."""
        self.evaluate("0")  # collects the events that arrived since the last command
        found = []
        for event in self.devtools.events:
            params = event["params"]
            if event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(details.get("exception", {}).get("description", details["text"]))
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                found.append(" ".join(str(arg.get("value")) for arg in params["args"]))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found


class Browser:
    """A headless Chromium process with a profile in ``profile_dir``."""

    def __init__(self, executable: str, profile_dir: Path):
        profile_dir.mkdir(parents=True, exist_ok=True)
        self.profile_dir = profile_dir
        self.log_path = profile_dir.parent / "chromium.log"
        with self.log_path.open("ab") as log_file:
            command = [executable, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"]
            # A session of its own: closing kills the whole group (GPU, renderers, ...).
            self.process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self.port, browser_path = self._wait_for_devtools()
            self.devtools = DevTools(f"ws://127.0.0.1:{self.port}{browser_path}")
        except Exception:
            self._kill()
            raise
        self.pages: list[Page] = []

    def new_page(self, url: str) -> Page:
        """Open ``url`` in a new tab of a new browser context (separate cookies and storage)."""
        context = self.devtools.call("Target.createBrowserContext")["browserContextId"]
        target = self.devtools.call(
            "Target.createTarget", url="about:blank", browserContextId=context
        )["targetId"]
        page = Page(DevTools(f"ws://127.0.0.1:{self.port}/devtools/page/{target}"), target)
        self.pages.append(page)
        page.goto(url)
        return page

    def close(self) -> None:
        """Close every page and the browser; kill it if it does not go in time."""
        for page in self.pages:
            with contextlib.suppress(Exception):
                page.devtools.close()
        with contextlib.suppress(Exception):
            self.devtools.call("Browser.close", timeout=2)
            self.devtools.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._kill()

    def _wait_for_devtools(self) -> tuple[int, str]:
        """Return the DevTools port and browser path Chromium writes once it listens."""
        active = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited; see {self.log_path}")
            lines = active.read_text().split() if active.exists() else []
            if len(lines) == 2:
                return int(lines[0]), lines[1]
            time.sleep(0.05)
        raise BrowserError(f"chromium did not open DevTools in time; see {self.log_path}")

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def headless_chromium(executable: str, profile_dir: Path) -> Iterator[Browser]:
    """Start Chromium for the length of the block."""
    browser = Browser(executable, profile_dir)
    try:
        yield browser
    finally:
        browser.close()


def script_hash(html: str) -> str:
    """Return the CSP source that allows a page's inline script."""
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL)
    assert script is not None, "the page has no inline script"
    digest = hashlib.sha256(script.group(1).encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Return the Chromium to drive; without one, skip (fail on CI, where it must be)."""
    path = find_chromium()
    if path is None:
        reason = "chromium is not installed (make browser, or apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def browser(chromium, tmp_path) -> Iterator[Browser]:
    with headless_chromium(chromium, tmp_path / "chromium") as running:
        yield running
