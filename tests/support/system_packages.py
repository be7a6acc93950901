"""Debian packages some tests need: found on the machine, installed on CI, else the test skips."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(pattern: str, package: str) -> Path:
    """Return the newest file matching ``pattern``; install ``package`` first if CI lacks it.

    Outside CI a machine without it skips the test: installing system packages is its owner's
    call (``apt-get install -y PACKAGE``), not a test's.
    """
    found = sorted(glob.glob(pattern))
    if not found and os.environ.get("CI") == "true" and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=300)
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
        subprocess.run(install, check=True, env=env, timeout=900)
        found = sorted(glob.glob(pattern))
    if not found:
        pytest.skip(f"{pattern} not found: apt-get install -y {package} (CI installs it itself)")
    return Path(found[-1])
