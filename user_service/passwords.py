"""Password hashing: Argon2id with OWASP's parameters, on a small pool that sheds a burst.

Hashing is the one deliberately expensive thing this service does (~20 ms of CPU each). Run in
the request threads, a burst of logins would take every core and every other request would wait
behind it. So hashes run on a few threads of their own, at a lower CPU priority (``nice``: the
scheduler serves the rest of the API first, and hashing gets what is left), and at most
``workers + queue`` are in flight per process. Past that bound a login or registration is
refused at once with ``HashingBusy`` (503, ``Retry-After``, ``X-Load-Shed``; nothing was done,
so the gateway may try another replica), rather than queued behind a wait nobody would accept.

Parameters (OWASP Password Storage Cheat Sheet, "Argon2id"): 19 MiB of memory, 2 iterations,
1 lane. A stored hash made with other parameters (argon2-cffi's older defaults: 64 MiB, 3, 4) is
still verified, and replaced by one with these at the next successful login.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fitness.errors import Unavailable

log = logging.getLogger(__name__)

Result = TypeVar("Result")

OWASP_ARGON2ID = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
# Niceness of the hashing threads (Linux schedules threads, so it is theirs alone): at 10 a
# thread weighs ~1/10 of a normal one when both want the CPU.
HASHING_NICENESS = 10
# How long a request waits for its queued hash at most (a bound, not an expected wait).
WAIT_SECONDS = 30.0


class HashingBusy(Unavailable):
    """Too many hashes in flight: this login or registration was refused before any work."""

    code = "busy"

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many logins and registrations at once; retry in {retry_after}s.",
        )
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after), "X-Load-Shed": "1"}


class Passwords:
    """Hash and verify passwords on a bounded, low-priority pool."""

    def __init__(self, workers: int = 1, queue: int = 32, retry_after: int = 1):
        self.hasher = PasswordHasher(**OWASP_ARGON2ID)
        self.retry_after = retry_after
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="hashing", initializer=_lower_priority
        )
        # Verified when the email is unknown, so a wrong email costs as much as a wrong password.
        self._dummy_hash = self.hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        """Return the hash of ``password``; raise ``HashingBusy`` past the bound."""
        return self._run(self.hasher.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Return (whether ``password`` matches, a new hash to store if the old one is outdated).

        With no stored hash (an unknown account) a dummy one is checked, so the answer takes as
        long as for a wrong password.
        """
        return self._run(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        try:
            self.hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if stored_hash is None:
            return False, None
        if self.hasher.check_needs_rehash(stored_hash):
            return True, self.hasher.hash(password)
        return True, None

    def _run(self, work: Callable[..., Result], *args) -> Result:
        if not self._slots.acquire(blocking=False):
            raise HashingBusy(self.retry_after)
        try:
            return self._pool.submit(work, *args).result(timeout=WAIT_SECONDS)
        finally:
            self._slots.release()


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: per thread); elsewhere, leave it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed
        log.warning("hashing threads keep their priority: %s", exc)
