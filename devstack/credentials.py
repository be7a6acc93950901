"""The local Redis servers' credentials: an ACL user per role, each password in a file made once.

Passwords live in ``DATA_DIR/secrets/redis/<kind>-<role>.password`` (0600, made on first start,
never rotated by a restart). A process gets the path (``FITNESS_*_PASSWORD_FILE``), never the
password itself in its environment or on a command line, and the servers' configuration holds
only SHA-256 digests (ACL ``#<hex>``). Who may do what is ``fitness.redisconn.REDIS_ACL``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fitness.redisconn import REDIS_ACL, acl_user

PASSWORD_BYTES = 32


def password_file(data_dir: Path, kind: str, role: str) -> Path:
    """Return the file holding ``role``'s password on the ``kind`` ("cache"/"state") servers."""
    return data_dir / "secrets" / "redis" / f"{kind}-{role}.password"


def ensure_password(data_dir: Path, kind: str, role: str) -> str:
    """Return ``role``'s password on ``kind`` servers, making it first if there is none."""
    path = password_file(data_dir, kind, role)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    with os.fdopen(descriptor, "w") as file:
        file.write(password)
    return password


def acl_lines(data_dir: Path, kind: str) -> list[str]:
    """Return the ACL of a ``kind`` server: ``default`` off, then each role's user."""
    users = REDIS_ACL[kind].items()
    passwords = {role: ensure_password(data_dir, kind, role) for role, _ in users}
    return ["user default off", *(acl_user(r, rules, passwords[r]) for r, rules in users)]


def write_config(path: Path, data_dir: Path, kind: str) -> Path:
    """Write a ``kind`` server's configuration file (its ACL; 0600) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(acl_lines(data_dir, kind)) + "\n")
    return path


def as_role(url: str, role: str) -> str:
    """Return ``url`` naming ``role`` as its ACL user (``redis://role@host:port``)."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{hosts}"))
