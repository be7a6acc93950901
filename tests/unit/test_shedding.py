"""Low-priority worker processes: lowered where the scheduler looks, and gone with their parent."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fitness import shedding
from fitness.errors import Unavailable
from fitness.shedding import BACKGROUND_NICENESS, low_priority_processes

autogroup_on = pytest.mark.skipif(
    not shedding.autogroup_enabled(),
    reason="the kernel groups no sessions (autogroup off): nice alone ranks processes",
)


def session_and_group() -> tuple[int, str]:
    """Run in a worker: its session and its scheduling group (``/autogroup-N nice K``)."""
    return os.getsid(0), Path("/proc/self/autogroup").read_text().strip()


@autogroup_on
def test_a_worker_process_is_lowered_in_a_scheduling_group_of_its_own():
    parents_group = Path("/proc/self/autogroup").read_text()
    with low_priority_processes(1, None, BACKGROUND_NICENESS) as pool:
        session, group = pool.submit(session_and_group).result(timeout=30)
    assert session != os.getsid(0), "the worker shares its parent's session, so its group"
    assert group.endswith(f"nice {BACKGROUND_NICENESS}"), group
    assert Path("/proc/self/autogroup").read_text() == parents_group, "the parent was lowered"


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
    outlived = _alive(worker)
    if outlived:
        os.kill(worker, signal.SIGKILL)
    assert not outlived, "the worker outlived its parent"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class RefusingAutogroup:
    """A ``/proc/self/autogroup`` that refuses ``refusals`` writes as the kernel does (EAGAIN)."""

    def __init__(self, refusals: int):
        self.refusals = refusals
        self.written: list[str] = []

    def write_text(self, text: str) -> int:
        if self.refusals:
            self.refusals -= 1
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        self.written.append(text)
        return len(text)


def test_a_refused_autogroup_write_is_tried_again_until_it_lands(monkeypatch):
    autogroup = RefusingAutogroup(refusals=3)
    monkeypatch.setattr(shedding, "AUTOGROUP", autogroup)
    monkeypatch.setattr(shedding.time, "sleep", lambda seconds: None)
    shedding._write_autogroup_niceness(19)
    assert autogroup.written == ["19"]


def test_a_write_refused_every_time_is_given_up_and_logged(monkeypatch, caplog):
    autogroup = RefusingAutogroup(refusals=shedding.AUTOGROUP_TRIES)
    monkeypatch.setattr(shedding, "AUTOGROUP", autogroup)
    monkeypatch.setattr(shedding.time, "sleep", lambda seconds: None)
    shedding._write_autogroup_niceness(19)
    assert autogroup.written == []
    assert "keeps its priority" in caplog.text


def test_a_job_given_up_on_still_holds_its_slot_until_it_ends():
    pool = shedding.SheddingPool("naps", workers=1, queue=0, wait_seconds=0.5)
    pool.run(time.sleep, 0)  # the worker process is up
    with pytest.raises(Unavailable, match="took too long"):
        pool.run(time.sleep, 2)
    with pytest.raises(shedding.Busy):
        pool.run(time.sleep, 0)  # the first nap still runs
    time.sleep(2)
    assert pool.run(time.sleep, 0) is None
