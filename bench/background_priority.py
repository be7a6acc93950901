"""Does a low-priority worker really yield? A normal process's share of a core against one.

Pins this process and a busy background worker to the same core for ``--seconds`` and prints
the share of the core this (normal-priority) process got, against:

- a nice-19 process in a session of its own (how a service's nice-19 worker stood when every
  service runs in its own session and Linux groups processes by session: autogroup);
- a worker of ``fitness.shedding.low_priority_processes`` at nice 19 (a scheduling group of its
  own, lowered).

An ideal background worker leaves the normal process ~100 %; equal weights give 50 %.

    .venv/bin/python -m bench.background_priority
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

from fitness.shedding import BACKGROUND_NICENESS, autogroup_enabled, low_priority_processes

CORE = 0
Started = Callable[[], object]  # wait for the background worker to finish
BUSY = "import os, time\nos.setpriority(os.PRIO_PROCESS, 0, {nice})\nbusy({seconds})"


def busy(seconds: float) -> None:
    """Spin on the CPU for ``seconds`` (run in the background worker)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def share_against(start_background: Callable[[float], Started], seconds: float) -> float:
    """Return the share of core ``CORE`` this process gets while the background spins."""
    background = start_background(seconds + 1.0)
    time.sleep(0.5)  # the background is spinning
    cpu, wall = time.process_time(), time.monotonic()
    busy(seconds)
    share = (time.process_time() - cpu) / (time.monotonic() - wall)
    background()
    return share


def nice_process_in_own_session(seconds: float) -> Started:
    """Start a nice-19 busy process in a session of its own, pinned to ``CORE``."""
    code = f"from bench.background_priority import busy\n{BUSY}".format(
        nice=BACKGROUND_NICENESS, seconds=seconds
    )
    child = subprocess.Popen(
        ["taskset", "-c", str(CORE), sys.executable, "-c", code], start_new_session=True
    )
    return child.wait


def shedding_worker(seconds: float) -> Started:
    """Start a busy job on a ``low_priority_processes`` worker pinned to ``CORE``."""
    pool = low_priority_processes(1, None, BACKGROUND_NICENESS)
    worker = pool.submit(os.getpid).result(timeout=30)  # started, and lowered
    os.sched_setaffinity(worker, {CORE})
    running = pool.submit(busy, seconds)

    def done() -> None:
        running.result()
        pool.shutdown()

    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {CORE})
    grouping = "on" if autogroup_enabled() else "off"
    print(f"autogroup {grouping}; all on core {CORE}, {args.seconds:g} s each")
    for label, start in (
        ("a nice-19 process in its own session", nice_process_in_own_session),
        ("a low_priority_processes worker (nice 19)", shedding_worker),
    ):
        share = share_against(start, args.seconds)
        print(f"against {label}: this normal process got {share:.0%} of the core")


if __name__ == "__main__":
    main()
