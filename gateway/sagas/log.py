"""The durable saga log: every saga's state, written before each step is attempted.

It lives in the gateways' state Redis, which runs with append-only persistence, so it outlives
any coordinator process and is shared by every gateway instance (any of them may finish a saga
another one started). A saga's record is one JSON value; unfinished sagas are also indexed in a
sorted set so recovery finds them without scanning. A lease key says which coordinator drives a
saga right now: it expires on its own when that coordinator dies.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from fitness.clock import now_iso

log = logging.getLogger(__name__)

TERMINAL_STATES = ("completed", "compensated", "failed")
_OPEN = "fgt:sagas:open"

# Persist a saga if we (still) hold its lease, in one round trip: renew or drop the lease, write
# the record, keep the index of open sagas. KEYS: lease, record, open index.
# ARGV: owner, lease ms, record JSON, saga id, 1 if finished, score.
# With no lease held, a saga already recorded and no longer open was finished by a coordinator
# that took over while our lease had run out: we must not write over its outcome.
_CHECKPOINT = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
if not holder and redis.call('EXISTS', KEYS[2]) == 1
    and not redis.call('ZSCORE', KEYS[3], ARGV[4]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[5] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  redis.call('DEL', KEYS[1])
else
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass
class Saga:
    """One saga: its type, owner, where it is, what it knows and what happened so far."""

    type: str
    user_id: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "running"
    step: int = 0
    compensate_from: int = -1
    error: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    correlation_id: str = ""
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def note(self, step: str, event: str, detail: str = "") -> None:
        """Append an entry to the saga's history."""
        entry = {"at": now_iso(), "step": step, "event": event}
        if detail:
            entry["detail"] = detail
        self.history.append(entry)

    def view(self) -> dict[str, Any]:
        """Return what a client may see of the saga."""
        return {
            "saga_id": self.id,
            "type": self.type,
            "state": self.state,
            "goal_id": self.data.get("goal_id"),
            "error": self.error,
            "history": self.history,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class SagaLog:
    """Saga records and leases in the state Redis."""

    def __init__(
        self,
        client: redis.Redis,
        lease_seconds: float,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 500,
    ):
        self.client = client
        self.lease_ms = int(lease_seconds * 1000)
        # With a replica, WAIT makes each checkpoint reach it before the step runs, so a
        # failover cannot lose a checkpoint the saga already acted on (replication is async).
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._checkpoint = client.register_script(_CHECKPOINT)
        self._release = client.register_script(_RELEASE)

    def checkpoint(self, saga: Saga, owner: str) -> bool:
        """Persist ``saga`` while ``owner`` holds its lease (renewing it, or dropping it once
        the saga is finished); False if another coordinator holds the lease now."""
        saga.updated_at = now_iso()
        keys = [_lease(saga.id), _key(saga.id), _OPEN]
        args = [owner, self.lease_ms, json.dumps(asdict(saga)), saga.id]
        args += [int(saga.finished), dt.datetime.now(dt.UTC).timestamp()]
        if not self._checkpoint(keys=keys, args=args):
            return False
        if self.wait_replicas:
            copies = self.client.wait(self.wait_replicas, self.wait_timeout_ms)
            if copies < self.wait_replicas:  # a replica is down: carry on, less protected
                log.warning("saga %s checkpoint reached %d replica(s)", saga.id, copies)
        return True

    def read(self, saga_id: str) -> Saga | None:
        """Return the saga with this id, or None."""
        raw = self.client.get(_key(saga_id))
        return Saga(**json.loads(raw)) if raw else None

    def open_sagas(self, limit: int = 100) -> list[str]:
        """Return ids of unfinished sagas, oldest first."""
        return [raw.decode() for raw in self.client.zrange(_OPEN, 0, limit - 1)]

    def acquire(self, saga_id: str, owner: str) -> bool:
        """Take the lease on a saga unless a live coordinator holds it."""
        return bool(self.client.set(_lease(saga_id), owner, nx=True, px=self.lease_ms))

    def release(self, saga_id: str, owner: str) -> None:
        """Give the lease back so another coordinator need not wait for it to expire."""
        self._release(keys=[_lease(saga_id)], args=[owner])

    def lock_goal(self, goal_id: str, saga_id: str, seconds: float) -> bool:
        """Let one saga at a time change a goal; compensations must not undo another's change."""
        return bool(self.client.set(_goal_lock(goal_id), saga_id, nx=True, px=int(seconds * 1000)))

    def unlock_goal(self, goal_id: str, saga_id: str) -> None:
        self._release(keys=[_goal_lock(goal_id)], args=[saga_id])

    def ping(self) -> None:
        self.client.ping()


def _key(saga_id: str) -> str:
    return f"fgt:saga:{saga_id}"


def _lease(saga_id: str) -> str:
    return f"fgt:saga:{saga_id}:lease"


def _goal_lock(goal_id: str) -> str:
    return f"fgt:goal-lock:{goal_id}"
