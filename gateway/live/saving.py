"""Hand an ended live session to the activity service, until it has it.

Ending a session queues it in Redis (and keeps its keys from expiring) before the first try, so
a gateway that dies mid-save, or an activity service that is down, delays the save but never
loses it: every gateway retries queued sessions, one at a time each (a short lease per session).
``SaveGroupSession`` is idempotent on the session id, so a repeated save changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading

import redis

from fitness.errors import DomainError
from fitness.rpc import ServiceClient
from fitness.v1 import activity_pb2
from gateway.live.store import PREFIX, LiveStore

log = logging.getLogger(__name__)

SAVE_LEASE_MS = 30_000


class SessionSaver:
    """Save ended sessions now, and retry the ones still queued every ``retry_seconds``."""

    def __init__(self, store: LiveStore, activity: ServiceClient, retry_seconds: float):
        self.store = store
        self.activity = activity
        self.retry_seconds = retry_seconds

    def save_soon(self, session_id: str) -> None:
        """Queue the session durably, then try to save it in the background."""
        self.store.queue_save(session_id)
        threading.Thread(target=self.try_save, args=(session_id,), daemon=True).start()

    def try_save(self, session_id: str) -> bool:
        """Save the session unless another gateway is saving it; return whether it is saved."""
        lease = f"{PREFIX}:saving:{session_id}"
        if not self.store.redis.set(lease, "1", nx=True, px=SAVE_LEASE_MS):
            return False
        try:
            saved = self.activity.call("SaveGroupSession", self._request(session_id))
            self.store.saved(session_id)
            log.info(
                "live session %s saved (%d workouts)",
                session_id,
                len(saved.workout_session_ids),
                extra={"event.action": "live-session-saved", "session.id": session_id},
            )
            return True
        except DomainError as exc:
            log.warning("could not save live session %s yet: %s", session_id, exc)
            return False
        finally:
            self.store.redis.delete(lease)

    def retry_forever(self, stopped: threading.Event) -> None:
        """Retry every queued session until ``stopped`` (a worker's background loop)."""
        while not stopped.wait(self.retry_seconds):
            try:
                for session_id in self.store.unsaved():
                    self.try_save(session_id)
            except redis.RedisError as exc:
                log.warning("could not read the queue of unsaved live sessions: %s", exc)

    def _request(self, session_id: str) -> activity_pb2.GroupSession:
        session = self.store.session(session_id) or {}
        members = self.store.members(session_id)
        return activity_pb2.GroupSession(
            group_session_id=session_id,
            creator_id=session.get("creator_id", ""),
            workout_type=session.get("workout_type", ""),
            name=session.get("name", ""),
            started_at=session.get("created_at", ""),
            ended_at=session.get("ended_at", ""),
            participants=[
                activity_pb2.GroupParticipant(
                    user_id=user_id,
                    joined_at=member["joined_at"],
                    left_at=member.get("left_at") or "",
                )
                for user_id, member in sorted(members.items())
            ],
            timeline_json=json.dumps(self.store.timeline(session_id)),
            exercises_json=json.dumps(self.store.exercises(session_id)),
            votes_json=json.dumps(self.store.votes(session_id)),
        )
