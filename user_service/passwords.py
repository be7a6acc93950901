"""Password hashing: Argon2id with OWASP's parameters, on a small pool that sheds a burst.

Hashing is the one deliberately expensive thing this service does (~20 ms of CPU each), so it
runs on a ``fitness.shedding`` pool: a few low-priority threads (argon2 leaves the GIL), and past
``workers + queue`` hashes in flight a login or registration is refused at once with 503
``busy`` and ``Retry-After``.

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


class Passwords:
    """Hash and verify passwords on a bounded, low-priority pool."""

    def __init__(self, workers: int = 1, queue: int = 32, retry_after: int = 1):
        self.hasher = PasswordHasher(**OWASP_ARGON2ID)
        self._pool = SheddingPool("logins and registrations", workers, queue, retry_after)
        # Verified when the email is unknown, so a wrong email costs as much as a wrong password.
        self._dummy_hash = self.hasher.hash("not-a-real-password")

    def hash(self, password: str) -> str:
        """Return the hash of ``password``; raise ``fitness.shedding.Busy`` past the bound."""
        return self._pool.run(self.hasher.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Return (whether ``password`` matches, a new hash to store if the old one is outdated).

        With no stored hash (an unknown account) a dummy one is checked, so the answer takes as
        long as for a wrong password.
        """
        return self._pool.run(self._verify, stored_hash, password)

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
