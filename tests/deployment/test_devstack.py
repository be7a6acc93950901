"""``make up`` says plainly what it lacks instead of a traceback or a silent stand-in store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from devstack.docstore import FERRETDB_VERSION
from tests.support.stack import free_port


def _up(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",  # no Go here (it lives in /usr/local/go or ~/go)
        "FITNESS_DATA_DIR": str(tmp_path / "data"),
        "FITNESS_TOOLS_DIR": str(tmp_path / "tools"),  # no FerretDB built yet
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "devstack", "up"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, ["install Go", "FITNESS_MONGO_URL"]),
        (
            {"FITNESS_MONGO_URL": f"mongodb://127.0.0.1:{free_port()}/"},
            ["does not answer", "FITNESS_MONGO_URL"],
        ),
    ],
    ids=["no go, no ferretdb, no url", "url that does not answer"],
)
def test_it_stops_with_one_plain_line(tmp_path, env, says):
    done = _up(tmp_path, **env)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert all(part in lines[0] for part in says), lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "data" / "logs").exists()  # nothing was started


def test_it_builds_ferretdb_from_the_go_module_proxy(tmp_path):
    # What make up does once per machine; here into an empty tools directory, so the build
    # itself runs (Go's own caches make it faster after the first time).
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: make up would say so (the test above)")
    env = {**os.environ, "FITNESS_TOOLS_DIR": str(tmp_path), "FITNESS_DATA_DIR": str(tmp_path)}
    env.pop("FITNESS_FERRETDB_BIN", None)
    done = subprocess.run(
        [sys.executable, "-m", "devstack", "tools"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    binary = tmp_path / f"ferretdb-{FERRETDB_VERSION}"
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    assert f"version: {FERRETDB_VERSION}" in version.stdout
