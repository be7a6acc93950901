"""Low-priority worker processes: lowered where the scheduler looks, and gone with their parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fitness.shedding import AUTOGROUP_ENABLED, BACKGROUND_NICENESS, low_priority_processes

autogroup_on = pytest.mark.skipif(
    not AUTOGROUP_ENABLED.exists() or AUTOGROUP_ENABLED.read_text().strip() != "1",
    reason="the kernel groups no sessions (autogroup off): nice alone ranks processes",
)


def session_and_group() -> tuple[int, str]:
    """Run in a worker: its session and its scheduling group (``/autogroup-N nice K``)."""
    return os.getsid(0), Path("/proc/self/autogroup").read_text().strip()


@autogroup_on
def test_a_worker_process_is_lowered_in_a_scheduling_group_of_its_own():
    with low_priority_processes(1, None, BACKGROUND_NICENESS) as pool:
        session, group = pool.submit(session_and_group).result(timeout=30)
    assert session != os.getsid(0), "the worker shares its parent's session, so its group"
    assert group.endswith(f"nice {BACKGROUND_NICENESS}"), group
    assert os.getpriority(os.PRIO_PROCESS, 0) < BACKGROUND_NICENESS, "the parent was lowered"


PARENT = """
import os, sys, time
from fitness.shedding import low_priority_processes
if __name__ == "__main__":
    pool = low_priority_processes(1, None, 19)
    print(pool.submit(os.getpid).result(timeout=30), flush=True)
    time.sleep(60)
"""


def test_a_worker_process_ends_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
    finally:
        parent.kill()  # the parent alone, as an out-of-memory kill would: not its group
        parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived its parent"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
