"""Password hashing on a small pool of low-priority processes that sheds a burst.

Hashing is the one deliberately expensive thing this service does (~20 ms of CPU each), so it
runs on a ``fitness.shedding`` pool: past ``workers + queue`` hashes in flight a login or
registration is refused at once with 503 ``busy`` and ``Retry-After``. The hashing itself
(Argon2id at OWASP's parameters, rehash of outdated hashes) is ``fitness.password_hashing``.

Processes, not threads, although argon2 leaves the GIL: a thread's priority ranks it only
against this service's own threads, while a pool process gets a scheduling group of its own and
yields to the gateway and the other services too. With threads, a burst of 50 logins made other
users' statistics reads' p99 x1.84 to x3.00 (median of 7, four runs); with processes x1.47 to
x2.10 (``python -m bench.login_burst --trials 7``, alternating).
"""

from __future__ import annotations

from fitness.password_hashing import new_hash, verify_and_refresh
from fitness.shedding import SheddingPool


class Passwords:
    """Hash and verify passwords on a bounded, low-priority pool of processes."""

    def __init__(self, workers: int = 1, queue: int = 32, retry_after: int = 1):
        self._pool = SheddingPool("logins and registrations", workers, queue, retry_after)

    def hash(self, password: str) -> str:
        """Return the hash of ``password``; raise ``fitness.shedding.Busy`` past the bound."""
        return self._pool.run(new_hash, password)

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, str | None]:
        """Return (whether ``password`` matches, a new hash to store if the old one is outdated);
        raise ``fitness.shedding.Busy`` past the bound. See ``verify_and_refresh``."""
        return self._pool.run(verify_and_refresh, stored_hash, password)
