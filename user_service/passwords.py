"""Password hashing: Argon2id with OWASP's parameters, on a small pool that sheds a burst.

Hashing is the one deliberately expensive thing this service does (~20 ms of CPU each), so it
runs on a ``fitness.shedding`` pool: a few low-priority processes, and past ``workers + queue``
hashes in flight a login or registration is refused at once with 503 ``busy`` and
``Retry-After``. Processes, not threads, although argon2 leaves the GIL: a thread's priority
ranks it only against this service's own threads, while a process gets a scheduling group of
its own and yields to the gateway and the other services too. With threads, a burst of 50
logins made other users' statistics reads' p99 x1.84 to x3.00 (median of 7, four runs); with
processes x1.47 to x2.10 (``python -m bench.login_burst --trials 7``, alternating).

Parameters (OWASP Password Storage Cheat Sheet, "Argon2id"): 19 MiB of memory, 2 iterations,
1 lane. A stored hash made with other parameters (argon2-cffi's older defaults: 64 MiB, 3, 4) is
still verified, and replaced by one with these at the next successful login.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fitness.shedding import SheddingPool

OWASP_ARGON2ID: dict[str, Any] = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}


HASHER = PasswordHasher(**OWASP_ARGON2ID)
# Verified when the email is unknown, so a wrong email costs as much as a wrong password.
DUMMY_HASH = HASHER.hash("not-a-real-password")


class Passwords:
    """Hash and verify passwords on a bounded, low-priority pool of processes."""

    def __init__(self, workers: int = 1, queue: int = 32, retry_after: int = 1):
        self._pool = SheddingPool("logins and registrations", workers, queue, retry_after)

    def hash(self, password: str) -> str:
        """Return the hash of ``password``; raise ``fitness.shedding.Busy`` past the bound."""
        return self._pool.run(new_hash, password)

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Return (whether ``password`` matches, a new hash to store if the old one is outdated).

        With no stored hash (an unknown account) a dummy one is checked, so the answer takes as
        long as for a wrong password.
        """
        return self._pool.run(verify_and_refresh, stored_hash, password)


def new_hash(password: str) -> str:
    """Return a fresh hash of ``password``, run in a pool process."""
    return HASHER.hash(password)


def verify_and_refresh(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """``Passwords.verify``, run in a pool process (a module function: it is sent by name)."""
    try:
        HASHER.verify(stored_hash or DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored_hash is None:
        return False, None
    if HASHER.check_needs_rehash(stored_hash):
        return True, HASHER.hash(password)
    return True, None
