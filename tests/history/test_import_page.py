"""The ``/import`` page in real headless Chromium: log in, choose files, see what each did."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from tests.support import REPO_ROOT
from tests.support import activity_files as files
from tests.support import browser as cdp
from tests.support.browser import script_hash
from tests.support.client import GatewayApi
from tests.support.stack import gateway_tier, make_replicas, running

chromium, browser = cdp.chromium, cdp.browser  # fixtures, shared with test_live_page.py
PAGE_FILE = REPO_ROOT / "gateway" / "pages" / "import.html"


def test_it_pins_its_script_in_its_content_security_policy():
    expected = script_hash(PAGE_FILE.read_text())
    assert f"script-src {expected};" in PAGE_FILE.read_text(), (
        f"import.html's script changed: set script-src {expected} in its CSP <meta>"
    )


@pytest.fixture(scope="module")
def stack(chromium, tmp_path_factory) -> Iterator:
    replicas = [*make_replicas(1), *gateway_tier(1)]
    with running(tmp_path_factory.mktemp("import-page"), replicas, {}) as started:
        yield started


def test_a_person_imports_files_from_the_page(stack, browser, tmp_path):
    api = GatewayApi(stack)
    user = api.register()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    run, notes = tmp_path / "run.gpx", tmp_path / "notes.txt"
    run.write_bytes(files.gpx(start, 25))
    notes.write_text("not a workout")

    page = browser.new_page(f"{api.user_url}/import")
    page.fill("login-email", user["email"])
    page.fill("login-password", user["password"])
    page.click("login-button")
    page.wait_for("!document.getElementById('upload-section').hidden")
    page.choose_files("upload-files", [run, notes])
    page.click("upload-button")
    page.wait_for("document.querySelectorAll('#results li').length === 2", timeout=20)

    results = page.evaluate(
        "[...document.querySelectorAll('#results li')].map(li => [li.className, li.textContent])"
    )
    assert results[0] == ["good", "run.gpx: 1 imported, 0 already there"]
    assert results[1][0] == "error" and "notes.txt" in results[1][1]
    assert "not a file this service imports" in results[1][1]
    token = api.login(user["email"])
    stats = api.get(f"{api.user_url}/users/{user['user_id']}/statistics", token).json()
    assert stats["total_workouts"] == 1
    # The refused file's 400 is logged by Chromium as a failed load; nothing else may be.
    assert [p for p in page.problems() if "status of 400" not in p] == []
