"""Expensive work on a small pool of its own, at low CPU priority, refused past a bound.

Two things a service does are deliberately expensive: hashing a password (user service) and
reading an uploaded workout file (activity service). Run in the request threads, a burst of
either would take every core and every other request would wait behind it. So each runs on a
pool of processes of its own with a lower CPU priority (``nice``: the scheduler serves the rest
of the stack first), and at most ``workers + queue`` jobs are in flight per process. Past that
bound a request is refused at once with ``Busy`` (503, ``Retry-After``, ``X-Load-Shed``: nothing
was done, so the gateway may try another replica) rather than queued behind a wait nobody would
accept.

Processes, not threads: Python work (parsing) in a thread would hold the GIL the request
threads need; and where Linux groups processes by session (autogroup), a thread's ``nice``
ranks it only against its own service's threads, even for work that leaves the GIL (argon2).
A worker process gets a scheduling group of its own (``lower_own_autogroup``), so it yields
to every other process of the stack.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import random
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool as BrokenExecutor
from pathlib import Path
from typing import TypeVar

from fitness import logs
from fitness.errors import Unavailable

log = logging.getLogger(__name__)

Result = TypeVar("Result")

# At 10 a thread or process weighs ~1/10 of a normal one when both want the CPU.
NICENESS = 10
# At 19, ~1/70: for background work with no request waiting on it (an archive's import job).
BACKGROUND_NICENESS = 19


class Busy(Unavailable):
    """Too many logins, registrations or file reads at once: refused before any work.

    Safe to resend (``Retry-After``); the gateway tries another replica first.
    """

    code = "busy"

    def __init__(self, what: str, retry_after: int):
        super().__init__(f"Too many {what} at once; retry in {retry_after}s.")
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after), "X-Load-Shed": "1"}


class SheddingPool:
    """Run jobs on a bounded pool of low-priority processes; ``Busy`` past the bound.

    The processes are started by spawn, so nothing of the parent's threads, channels or locks
    is inherited; a job is a module-level function (sent by name) and picklable arguments. The
    pool is made at first use, so a service that forks its workers makes one in each of them.
    """

    def __init__(
        self,
        what: str,
        workers: int = 1,
        queue: int = 0,
        retry_after: int = 1,
        wait_seconds: float = 30.0,
        memory_limit: int | None = None,
    ):
        self.what = what
        self.workers = workers
        self.retry_after = retry_after
        self.wait_seconds = wait_seconds
        self.memory_limit = memory_limit  # bytes of address space a worker process may use
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._executor: Executor | None = None
        self._made = threading.Lock()

    def run(self, work: Callable[..., Result], *args) -> Result:
        """Return ``work(*args)`` run on the pool; raise ``Busy`` past the bound.

        A job's slot is freed when the job ends, not when its caller stops waiting for it: a
        job given up on after ``wait_seconds`` still runs, and still counts against the bound.
        """
        if not self._slots.acquire(blocking=False):
            raise Busy(self.what, self.retry_after)
        try:
            future = self._pool().submit(work, *args)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        try:
            return future.result(timeout=self.wait_seconds)
        except BrokenExecutor:  # a worker process died (killed, out of memory): start afresh
            with self._made:
                self._executor = None
            raise Unavailable(f"The {self.what} pool restarted; try again.") from None
        except TimeoutError:
            raise Unavailable(f"The {self.what} took too long; try again later.") from None

    def _pool(self) -> Executor:
        with self._made:
            if self._executor is None:
                self._executor = low_priority_processes(self.workers, self.memory_limit)
            return self._executor


def low_priority_processes(
    workers: int, memory_limit: int | None, niceness: int = NICENESS
) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` low-priority processes (spawned: nothing of the parent's
    threads, channels or locks is inherited), each bounded to ``memory_limit`` bytes."""
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_process,
        initargs=(memory_limit, niceness, logs.logging_setup()),
    )


def _start_process(
    memory_limit: int | None, niceness: int, logging_setup: tuple[str, str, str] | None
) -> None:
    """Set up a worker process: its parent's JSON logging, low priority, and a bound on its
    memory (MemoryError past it)."""
    end_with_parent()
    if logging_setup:
        logs.configure_logging(*logging_setup, settings={})
    lower_priority(niceness)
    lower_own_autogroup(niceness)
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))


def lower_priority(niceness: int = NICENESS) -> None:
    """Lower the calling thread's CPU priority (Linux: per thread; a process's first thread
    is the process); elsewhere, leave it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        log.warning("pool workers keep their priority: %s", exc)


AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_ENABLED = Path("/proc/sys/kernel/sched_autogroup_enabled")
# An unprivileged write is allowed once per 100 ms, machine-wide: workers started together
# take turns, each trying again after a random 0.1-0.3 s, for up to ~30 s.
AUTOGROUP_TRIES = 150


def autogroup_enabled() -> bool:
    """True where Linux groups processes by session for the scheduler (autogroup)."""
    try:
        return AUTOGROUP_ENABLED.read_text().strip() == "1"
    except OSError:  # not Linux, or a kernel without autogroup
        return False


def lower_own_autogroup(niceness: int) -> None:
    """Give the calling process a scheduling group of its own, at ``niceness``.

    With autogroup on (Linux's default on most distributions), ``nice`` only ranks a process
    against the others of its session: each session is one group, and the groups share the
    CPU equally. Every service runs in a session of its own, so a nice-19 worker still took a
    whole share of a core from the gateway or the store (measured here: 50 % of a core against
    a normal process, 2 % once in its own group at nice 19). A worker process therefore starts
    a session of its own and lowers that group.
    Inside a container's cgroup autogroup does not apply; there ``nice`` ranks within the
    container, and the container's CPU weight is what the host sees.
    """
    if not autogroup_enabled():
        return
    try:
        os.setsid()
    except OSError:  # already a session leader
        return
    _write_autogroup_niceness(niceness)


def _write_autogroup_niceness(niceness: int) -> None:
    for _ in range(AUTOGROUP_TRIES):
        try:
            AUTOGROUP.write_text(str(niceness))
            return
        except OSError as exc:
            if exc.errno != errno.EAGAIN:
                log.warning("worker's scheduling group keeps its priority: %s", exc)
                return
            time.sleep(random.uniform(0.1, 0.3))
    log.warning("worker's scheduling group keeps its priority: the kernel kept refusing")


def end_with_parent() -> None:
    """Exit this process when the one that started it ends.

    A worker waits for work forever, since it holds its pool's queue open itself: a parent
    killed alone (out of memory) left its workers behind, and a worker in a session of its own
    is out of reach of a stop of its service's process group (``killpg``) too.
    multiprocessing's sentinel of the parent says when the parent is gone, whichever way.
    """
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_after, args=(parent,), name="parent-watch", daemon=True
        ).start()


def _exit_after(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(1)  # the whole process: sys.exit in a thread would end only this thread
