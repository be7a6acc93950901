"""The documentation site builds in strict mode: a broken link or anchor fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
