"""The hardening results table: every suite records rows here, docs/hardening.md shows them.

Each long-running suite (faults, network faults, load, API fuzzing, WebSocket fuzzing) saves
its rows with :func:`save` into ``bench/results/<suite>.json`` (committed, so a change in the
figures shows in review). ``python -m bench.results`` renders every saved suite as one Markdown
table and writes it into docs/hardening.md between the ``hardening-table`` markers, so the page
always shows the figures of a real run, never numbers typed by hand.

A row counts outcomes the way a client sees them:

- ``succeeded``: the request did what was asked (2xx, or the event arrived);
- ``failed_clear``: refused with a clear error (a 4xx/503 with a JSON ``error`` body, or an
  ``error`` event on a socket) that the client can act on;
- ``failed_other``: anything else (another 5xx, a hang past its timeout, a malformed answer);
- ``lost``: acknowledged writes that cannot be read back afterwards. Must be 0.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
RESULTS_DIR = BENCH_DIR / "results"
HARDENING_PAGE = BENCH_DIR.parent / "docs" / "hardening.md"
START_MARKER = "<!-- hardening-table:start -->"
END_MARKER = "<!-- hardening-table:end -->"


@dataclass
class Row:
    """One thing tried, how much of it, and what the clients saw."""

    area: str  # faults | network | load | fuzz | websocket | security
    tried: str  # what was done, e.g. "SIGKILL user_service-1 during mixed load"
    amount: str  # how much, e.g. "60 s at 40 req/s + 20 sockets + 5 sagas/s"
    sent: int
    succeeded: int
    failed_clear: int
    failed_other: int
    lost: int
    notes: str = ""


@dataclass
class Suite:
    """The rows of one suite run, with the command that produced them."""

    name: str
    command: str
    rows: list[Row] = field(default_factory=list)
    started_at: str = field(
        default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    )
    machine: str = field(default_factory=lambda: f"{platform.machine()}, {_cpu_count()} CPUs")
    commit: str = field(default_factory=lambda: _git_commit())


def _cpu_count() -> int:
    return os.cpu_count() or 0


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=BENCH_DIR,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def save(suite: Suite) -> Path:
    """Write the suite's rows to ``bench/results/<name>.json`` and print them as a table."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{suite.name}.json"
    data = asdict(suite)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(render([data]))
    print(f"saved {path}")
    return path


def load_all() -> list[dict]:
    """Every saved suite, in a stable order."""
    return [json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))]


def render(suites: list[dict]) -> str:
    """One Markdown table over all suites' rows, then the command and commit of each suite."""
    header = (
        "| area | what was tried | how much | sent | succeeded | failed, clear error "
        "| failed, other | lost | notes |\n|---|---|---|---:|---:|---:|---:|---:|---|"
    )
    lines = [header]
    for suite in suites:
        for row in suite["rows"]:
            lines.append(
                "| {area} | {tried} | {amount} | {sent} | {succeeded} | {failed_clear} "
                "| {failed_other} | **{lost}** | {notes} |".format(**row)
            )
    lines.append("")
    for suite in suites:
        lines.append(
            f"- `{suite['name']}`: `{suite['command']}` — run {suite['started_at']} "
            f"at commit {suite['commit'] or '?'} on {suite['machine']}"
        )
    return "\n".join(lines)


def update_hardening_page(page: Path = HARDENING_PAGE) -> None:
    """Replace the table between the markers in docs/hardening.md with the saved suites' rows."""
    text = page.read_text()
    start, end = text.index(START_MARKER), text.index(END_MARKER)
    table = render(load_all())
    page.write_text(text[: start + len(START_MARKER)] + "\n" + table + "\n" + text[end:])


def command_line(module: str, args: Sequence[str], python: str = "python") -> str:
    """Return the command that runs the bench ``module`` with ``args``, to print beside its
    figures so that a reader can run it again."""
    return shlex.join([python, "-m", module, *args])
