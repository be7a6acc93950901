"""The documentation site builds in strict mode: a broken link or anchor fails the suite."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT, activity_files
from tests.support.stack import gateway_tier, make_replicas, running
from tests.support.system_packages import require

ROOT = REPO_ROOT


def test_the_docs_site_builds_with_every_link_and_anchor_resolved(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "api" / "index.html").exists()


def test_the_front_page_stays_a_front_page():
    """The README says what this is, the two commands, the parts and the ports, and where to
    read on; the rest lives in docs/ (issue 17)."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for chapter in ROOT.joinpath("docs").glob("*.md"):
        if chapter.name != "index.md":
            assert f"docs/{chapter.name}" in readme, f"the README does not point at {chapter.name}"


def shell_blocks(page: Path) -> list[str]:
    """Return the ```sh blocks of a Markdown page, in order."""
    return re.findall(r"^```sh\n(.*?)^```", page.read_text(), flags=re.S | re.M)


# Each call prints its body as documented, and its status and URL to stderr for the test; the
# last body is kept, so the example ids the docs assign (GOAL=…, SESSION=…) can be the real ones.
CURL_WRAPPER = """
curl() {
    command curl --max-time 30 --write-out '%{stderr}@@ %{http_code} %{url_effective}\\n' "$@" \\
        | tee last.json
    echo
}
last() { python3 -c "import json; print(json.load(open('last.json'))['$1'])"; }
"""


def runnable(blocks: list[str], gateway: str) -> str:
    """Return the blocks as one script against ``gateway``, the docs' ids taken from answers."""
    lines = []
    for line in "\n".join(blocks).splitlines():
        if line.startswith("G="):
            line = f"G={gateway}"
        elif line.startswith("GOAL="):
            line = "GOAL=$(last goal_id)"
        elif line.startswith("SESSION="):
            line = "SESSION=$(last session_id)"
        lines.append(line)
    return CURL_WRAPPER + "\n".join(lines) + "\n"


def test_the_api_guides_examples_work_as_written_through_a_gateway(tmp_path):
    """Every curl of docs/api.md, run in order in one shell against a fresh stack: each
    answers 2xx but the one example of bad input, which answers 400."""
    require("/usr/bin/curl", "curl")
    blocks = shell_blocks(ROOT / "docs" / "api.md")
    calls = sum(len(re.findall(r"(?:^|\$\(|\s)curl\s", block)) for block in blocks)
    assert calls >= 15, "the examples were not found"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    (tmp_path / "morning_run.fit.gz").write_bytes(gzip.compress(activity_files.fit(start, 30)))
    replicas = [*make_replicas(1), *gateway_tier(1)]
    with running(tmp_path / "stack", replicas, {}) as stack:
        script = runnable(blocks, stack.replicas_of("gateway")[0].url)
        result = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
    answers = re.findall(r"^@@ (\d{3}) (\S+)$", result.stderr, flags=re.M)
    assert len(answers) == calls, result.stderr[-3000:]
    failed = [(int(status), url) for status, url in answers if not status.startswith("2")]
    assert failed == [(400, answers[0][1])], result.stdout[-3000:]  # the bad register only
