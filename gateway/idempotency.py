"""Deduplicate writes that carry an ``Idempotency-Key``: the same key gets the first response.

A key belongs to the caller (their user id, or their address before they log in) and is bound
to the request it first came with (method, path and body): the same key on a different request
is a client bug and gets 422, the same key while the first request is still running gets 409.
Server-side failures (5xx) are not kept, so the client can retry with the same key. Records
live in the sharded Redis for ``ttl`` (24 h by default); with no Redis server reachable, writes
go through undeduplicated and the gateway logs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from fitness.errors import Conflict, DomainError
from gateway.shards import ShardedRedis

REPLAYED_HEADERS = ("X-Saga-ID", "Location")
"""Headers a replayed answer repeats: which saga the write was, and where to follow it."""

log = logging.getLogger(__name__)


class IdempotencyInProgress(Conflict):
    """A request with this Idempotency-Key is still running; retry shortly."""

    code = "idempotency_in_progress"


class IdempotencyKeyReused(DomainError):
    """This Idempotency-Key came with a different request."""

    http_status = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """A caller's right to run a keyed request once; settle it with the response."""

    record_key: str
    fingerprint: str


class IdempotencyStore:
    """Records of keyed writes in sharded Redis."""

    def __init__(self, shards: ShardedRedis, ttl_seconds: float, running_seconds: float):
        self.shards = shards
        self.ttl_ms = int(ttl_seconds * 1000)
        self.running_ms = int(running_seconds * 1000)

    def claim(
        self, owner: str, key: str, method: str, path: str, body: bytes
    ) -> Claim | StoredResponse | None:
        """Claim ``key`` for this request, or return the response it already got.

        Returns None when no Redis server is reachable (the write goes through unprotected).
        """
        claim = Claim(f"fgt:idem:{{{owner}}}:{key}", _fingerprint(method, path, body))
        claimed = self._try_claim(claim)
        if claimed:
            return claim
        if claimed is None:
            log.warning(
                "idempotency records unreachable; %s %s goes through unprotected", method, path
            )
            return None
        return self._earlier(claim)

    def settle(
        self,
        claim: Claim,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Keep the response for replays, or free the key after a server-side failure.

        ``headers``: those a replay must repeat (``REPLAYED_HEADERS``: a saga's id and status
        URL), not the framing.
        """
        client_of = self.shards.clients
        if status >= 500:
            self.shards.run(claim.record_key, lambda url: client_of[url].delete(claim.record_key))
            return
        record = json.dumps(
            {
                "state": "done",
                "fingerprint": claim.fingerprint,
                "status": status,
                "content_type": content_type,
                "headers": {k: v for k, v in (headers or {}).items() if k in REPLAYED_HEADERS},
                "body": base64.b64encode(body).decode(),
            }
        )
        self.shards.run(
            claim.record_key,
            lambda url: client_of[url].set(claim.record_key, record, px=self.ttl_ms),
        )

    def release(self, claim: Claim) -> None:
        """Free the key when the request failed before any service answered."""
        self.shards.run(
            claim.record_key, lambda url: self.shards.clients[url].delete(claim.record_key)
        )

    def _earlier(self, claim: Claim) -> Claim | StoredResponse | None:
        raw = self.shards.run(
            claim.record_key, lambda url: self.shards.clients[url].get(claim.record_key)
        )
        if raw is None and self._try_claim(claim):  # freed since: this request runs
            return claim
        record: dict[str, Any] = (
            json.loads(raw) if raw else {"state": "running", "fingerprint": claim.fingerprint}
        )
        if record["fingerprint"] != claim.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request; use a new key."
            )
        if record["state"] == "running":
            raise IdempotencyInProgress(
                "A request with this Idempotency-Key is still running; retry shortly."
            )
        return StoredResponse(
            record["status"],
            base64.b64decode(record["body"]),
            record["content_type"],
            record.get("headers", {}),
        )

    def _try_claim(self, claim: Claim) -> bool | None:
        """Return whether the key was free and is now ours (None: no server reachable)."""
        running = json.dumps({"state": "running", "fingerprint": claim.fingerprint})

        def set_if_free(url: str) -> bool:
            # redis-py answers None, not False, when NX finds the key taken.
            client = self.shards.clients[url]
            return bool(client.set(claim.record_key, running, nx=True, px=self.running_ms))

        return self.shards.run(claim.record_key, set_if_free)


def _fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()
