"""Connections to the durable ("state") Redis: one URL, or Sentinels that name the primary.

``redis://host:port/db`` connects to one server. ``redis+sentinel://h1:p1,h2:p2/master/db``
asks those Sentinels for the current primary of ``master`` on every new connection, so after a
failover the client follows the new primary (redis-py's ``Sentinel.master_for``).

Credentials: the ACL user is the URL's (``redis://gateway@host:6379/0``, also before the
Sentinels' hosts); the password is given apart (a secret file, see ``fitness.config``), so URLs can
be logged. With Sentinels, the same user and password open the Sentinels and the servers.
"""

from __future__ import annotations

import hashlib
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from fitness.config import redacted

SENTINEL_SCHEME = "redis+sentinel"


def live_user_channel(user_id: str) -> str:
    """Return the channel whose messages reach every live connection of ``user_id``."""
    return f"fgt:live:u:{user_id}"


# Who may do what on each kind of Redis server: one ACL user per role, the only table (``make up``
# writes it into the servers' configuration, compose's must agree; docs/deployment.md shows it). The
# ``default`` user is off everywhere. The gateway owns the cache and the state; the user service
# only announces achieved goals, so it may PUBLISH on the live channels and nothing else.
REDIS_ACL: dict[str, dict[str, str]] = {
    "cache": {"gateway": "~* &* +@all"},
    "state": {
        "gateway": "~* &* +@all",
        "user_service": f"resetchannels &{live_user_channel('*')} -@all +publish +ping",
    },
}
# Deployed only, where the state Redis has a replica and Sentinels: what replication and the
# Sentinels need on the servers (Redis's documented minimum), and who may ask the Sentinels.
STATE_HA_ACL: dict[str, str] = {
    "replica": "-@all +psync +replconf +ping",
    "sentinel": (
        "allchannels -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish"
        " +info +client|setname +client|kill +script|kill"
    ),
}
_ASK_SENTINEL = (
    "-@all +ping +sentinel|masters +sentinel|master +sentinel|get-master-addr-by-name"
    " +sentinel|sentinels +sentinel|slaves +sentinel|replicas"
)
SENTINEL_ACL: dict[str, str] = {
    "gateway": _ASK_SENTINEL,
    "user_service": _ASK_SENTINEL,
    "sentinel": "allchannels +@all",
}


def acl_user(role: str, rules: str, password: str) -> str:
    """Return the ACL line of ``role``: on, its rules, and only its password's SHA-256 digest."""
    return f"user {role} on #{hashlib.sha256(password.encode()).hexdigest()} {rules}"


def state_redis(
    url: str, timeout_seconds: float, max_connections: int = 256, password: str = ""
) -> redis.Redis:
    """Return a client of the state Redis at ``url``; every call has ``timeout_seconds``."""
    options = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "max_connections": max_connections,
        "password": password or None,
    }
    check_credentials(url, password)
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        # Blocking: with thousands of greenlets a burst waits (up to the timeout) for a free
        # connection instead of failing at once with "Too many connections".
        pool = redis.BlockingConnectionPool.from_url(url, timeout=timeout_seconds, **options)
        return redis.Redis(connection_pool=pool)
    master, _, db = parts.path.strip("/").partition("/")
    if not master:
        example = f"{SENTINEL_SCHEME}://h1:26379,h2:26379/mymaster/0"
        raise ValueError(f"{url!r} does not name the monitored primary, e.g. {example}")
    user, _, hosts = parts.netloc.rpartition("@")
    credentials = {"username": unquote(user) or None, "password": password or None}
    sentinels = [_host_port(item) for item in hosts.split(",") if item]
    sentinel = Sentinel(
        sentinels,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        sentinel_kwargs={"socket_timeout": timeout_seconds, **credentials},
    )
    return sentinel.master_for(master, db=int(db or 0), **{**options, **credentials})


def check_credentials(url: str, password: str) -> None:
    """Raise ``ValueError`` if ``url`` names an ACL user but no password is given for it.

    Said at start, in one line: otherwise every command would fail later, far from the cause.
    """
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    if user and not (password or parts.password):
        raise ValueError(
            f"{redacted(url)} logs in as {unquote(user)!r} but no password is set for it"
            " (FITNESS_*_REDIS_PASSWORD or FITNESS_*_REDIS_PASSWORD_FILE)"
        )


def _host_port(item: str) -> tuple[str, int]:
    host, _, port = item.rpartition(":")
    return (host or item), int(port or 26379)
