"""Brute-force protection for login: failed attempts limited per account and per client address.

Only failures count, so a person who types their password right is never slowed down. Counters
live in the sharded Redis (moving windows from the ``limits`` library), so every gateway instance
sees the same counts. An unreachable counter server fails open: the services' own password
hashing cost still bounds guessing, and refusing every login because a cache died would be worse.
"""

from __future__ import annotations

import math
import time
from typing import Any

import limits
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from fitness.errors import DomainError
from gateway.shards import ShardedRedis


class TooManyLoginAttempts(DomainError):
    """Too many failed logins for the account or from the address (``Retry-After``)."""

    http_status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed logins; try again in {retry_after}s.")
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class LoginGuard:
    """Count failed logins per account and per address; refuse when either is exhausted."""

    def __init__(self, shards: ShardedRedis, per_account: str, per_address: str):
        self.shards = shards
        self.limits = {
            "account": limits.parse(per_account),
            "address": limits.parse(per_address),
        }
        self.limiters = {
            url: MovingWindowRateLimiter(
                RedisStorage(url, connection_pool=client.connection_pool, key_prefix="fgt:login")
            )
            for url, client in shards.clients.items()
        }

    def check(self, account: str | None, address: str) -> None:
        """Raise TooManyLoginAttempts when this account or address used up its failures."""
        for kind, identity in self._identities(account, address):
            if self._counter("test", kind, identity) is False:
                stats = self._counter("get_window_stats", kind, identity)
                wait = math.ceil(stats.reset_time - time.time()) if stats else 1
                raise TooManyLoginAttempts(max(1, wait))

    def record_failure(self, account: str | None, address: str) -> None:
        """Count one failed login against the account and the address."""
        for kind, identity in self._identities(account, address):
            self._counter("hit", kind, identity)

    def _counter(self, action: str, kind: str, identity: str) -> Any:
        """Call ``action`` of the limiter on the server owning this counter (None if down)."""
        item = self.limits[kind]
        return self.shards.run(
            f"{kind}:{identity}",
            lambda url: getattr(self.limiters[url], action)(item, kind, identity),
        )

    @staticmethod
    def _identities(account: str | None, address: str) -> list[tuple[str, str]]:
        found = [("address", address)]
        if account:
            found.append(("account", account.strip().lower()))
        return found
