"""Argon2id at OWASP's parameters: the functions a hashing process runs.

They live apart from the user service, which queues them (``user_service/passwords.py``), so a
hashing process imports argon2 and this module, not the service's web stack (Flask,
SQLAlchemy, gRPC: ~86 MiB a process, against ~30 MiB).

Parameters (OWASP Password Storage Cheat Sheet, "Argon2id"): 19 MiB of memory, 2 iterations,
1 lane. A stored hash made with other parameters (argon2-cffi's older defaults: 64 MiB, 3, 4) is
still verified, and replaced by one with these at the next successful login.
"""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

OWASP_ARGON2ID: dict[str, Any] = {"time_cost": 2, "memory_cost": 19 * 1024, "parallelism": 1}
HASHER = PasswordHasher(**OWASP_ARGON2ID)
# Checked when the email is unknown, so a wrong email costs as much as a wrong password. Made
# at import (~20 ms), so that even a process's first unknown email costs no more than that.
DUMMY_HASH = HASHER.hash("not-a-real-password")


def new_hash(password: str) -> str:
    """Return a fresh hash of ``password``."""
    return HASHER.hash(password)


def verify_and_refresh(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Return (whether ``password`` matches, a new hash to store if the old one is outdated).

    With no stored hash (an unknown account) a dummy one is checked, so the answer takes as
    long as for a wrong password.
    """
    try:
        HASHER.verify(DUMMY_HASH if stored_hash is None else stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored_hash is None:
        return False, None
    if HASHER.check_needs_rehash(stored_hash):
        return True, HASHER.hash(password)
    return True, None
