"""Workout sessions, calories and statistics: the activity service's domain logic."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from activity_service import schemas
from activity_service.exceptions import SessionAlreadyActive, SessionNotFound, UserNotFound
from activity_service.store import ActivityStore
from activity_service.totals import Totals
from fitness import mongo, workouts
from fitness.errors import DomainError, NotFound, PermissionDenied, Unavailable, ValidationFailed
from fitness.rpc import ServiceClient
from fitness.v1 import user_pb2

log = logging.getLogger(__name__)

REPORT_INTERVAL_SECONDS = 5.0
REPORT_BATCH = 100
# Namespace of session ids derived from (user, Idempotency-Key); any fixed UUID would do.
_KEYED_SESSIONS = uuid.UUID("6f1d0c52-3b7e-4d0a-9a43-2f5e8c1b7d90")


def _to_millis(moment: dt.datetime) -> dt.datetime:
    """Drop sub-millisecond digits, which BSON dates do not keep."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def utcnow() -> dt.datetime:
    """Return the current time in UTC, to the millisecond."""
    return _to_millis(dt.datetime.now(dt.UTC))


def _as_utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def session_view(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a session document in the API's shape (times ISO-8601, duration in minutes)."""
    end_time = doc.get("end_time")
    return {
        "session_id": doc["_id"],
        "user_id": doc["user_id"],
        "workout_type": doc["workout_type"],
        "status": doc["status"],
        "start_time": _as_utc(doc["start_time"]).isoformat(),
        "end_time": _as_utc(end_time).isoformat() if end_time else None,
        "duration": doc.get("duration"),
        "calories_burned": doc.get("calories_burned"),
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def sessions_of(user_id: str) -> dict[str, Any]:
    """Return the filter of a user's sessions (served by the ``user_id, start_time`` index)."""
    return {"user_id": user_id}


def unreported(before: dt.datetime) -> dict[str, Any]:
    """Return the filter of ended sessions not yet counted and reported, changed before ``before``.

    Served by the ``progress_reported, status`` index (few sessions wait at any time).
    """
    return {"progress_reported": False, "status": "ended", "updated_at": {"$lt": before}}


class UserDirectory:
    """What the activity service asks of the user service, over gRPC."""

    def __init__(self, client: ServiceClient, inline_timeout: float | None = None):
        self.client = client
        self.inline_timeout = inline_timeout  # per call while a client waits; None: the client's

    def weight_kg(self, user_id: str) -> tuple[float, str]:
        """Return the user's weight and where it came from ("profile" or "default")."""
        request = user_pb2.GetUserRequest(user_id=user_id)
        try:
            user = self.client.call("GetUser", request, timeout=self.inline_timeout)
        except NotFound:
            raise UserNotFound(user_id) from None
        except Unavailable as exc:
            log.warning("using the default body weight: %s", exc.message)
            return workouts.DEFAULT_BODY_WEIGHT_KG, "default"
        if user.weight_kg > 0:
            return user.weight_kg, "profile"
        return workouts.DEFAULT_BODY_WEIGHT_KG, "default"

    def record_workout(self, doc: dict[str, Any], inline: bool = True) -> None:
        """Count an ended session towards the owner's goals (idempotent on the session id).

        ``inline``: a client is waiting, so use the short deadline (the outbox retries).
        """
        request = user_pb2.RecordWorkoutRequest(
            session_id=doc["_id"],
            user_id=doc["user_id"],
            workout_type=doc["workout_type"],
            duration_minutes=doc["duration"],
            calories_burned=doc["calories_burned"],
            ended_at=_as_utc(doc["end_time"]).isoformat(),
        )
        self.client.call("RecordWorkout", request, timeout=self.inline_timeout if inline else None)


class WorkoutService:
    """Start and end workout sessions; count finished ones and report them to the user service."""

    def __init__(self, store: ActivityStore, users: UserDirectory):
        self.store = store
        self.users = users
        self.totals = Totals(store)

    def start(
        self,
        user_id: str,
        workout_type: str,
        start_time: dt.datetime | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start a session (now, or at ``start_time``); at most one active session per user.

        With an idempotency key the session id derives from it, so a repeated request finds
        the session the first one started instead of starting another.
        """
        if idempotency_key:
            session_id = str(uuid.uuid5(_KEYED_SESSIONS, f"{user_id}\n{idempotency_key}"))
            if (earlier := self.store.sessions.find_one({"_id": session_id})) is not None:
                return session_view(earlier)
        else:
            session_id = str(uuid.uuid4())
        weight_kg, weight_source = self.users.weight_kg(user_id)
        self._claim_active_slot(user_id, session_id)
        now = utcnow()
        doc = {
            "_id": session_id,
            "user_id": user_id,
            "workout_type": workout_type,
            "status": "active",
            "start_time": _to_millis(start_time) if start_time else now,
            "weight_kg": weight_kg,
            "weight_source": weight_source,
            "progress_reported": False,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.store.sessions.insert_one(doc)
        except DuplicateKeyError:
            # Only a keyed id can collide: the same request won a race with this one.
            return session_view(self.store.sessions.find_one({"_id": session_id}))
        except Exception:
            self._release_active_slot(user_id, session_id)
            raise
        log.info("workout started", extra={"user.id": user_id, "session.id": session_id})
        return session_view(doc)

    def _claim_active_slot(self, user_id: str, session_id: str) -> None:
        """Take the user's one active-session slot, or raise ``SessionAlreadyActive``.

        The slot document stays once made: ending a session frees it (``session_id`` None), so
        every change of hands is a conditional update, never a delete racing an insert.
        """
        try:
            self.store.active_sessions.insert_one({"_id": user_id, "session_id": session_id})
            return
        except DuplicateKeyError:
            pass
        holder = self.store.active_sessions.find_one({"_id": user_id}) or {}
        held_by = holder.get("session_id")
        current = self.store.sessions.find_one({"_id": held_by}) if held_by else None
        if current is not None and current["status"] == "active":
            raise SessionAlreadyActive(current["_id"])
        # Free, or it outlived its session (a crash between ending it and freeing the slot).
        taken = mongo.update(
            self.store.active_sessions.find_one_and_update,
            {"_id": user_id, "session_id": held_by},
            {"$set": {"session_id": session_id}},
        )
        if taken is None:
            raise SessionAlreadyActive(self._active_session_id(user_id))

    def _release_active_slot(self, user_id: str, session_id: str) -> None:
        mongo.update(
            self.store.active_sessions.update_one,
            {"_id": user_id, "session_id": session_id},
            {"$set": {"session_id": None}},
        )

    def _active_session_id(self, user_id: str) -> str:
        holder = self.store.active_sessions.find_one({"_id": user_id}) or {}
        return holder.get("session_id") or ""

    def end(self, session_id: str, caller_id: str, end_time: dt.datetime | None) -> dict[str, Any]:
        """End a session; ending it again returns the first result and counts once."""
        doc = self._owned_session(session_id, caller_id)
        if doc["status"] == "ended":
            return session_view(doc)
        end_time = _to_millis(end_time) if end_time else utcnow()
        start_time = _as_utc(doc["start_time"])
        if end_time < start_time:
            raise ValidationFailed(
                "end_time is before the session's start.",
                fields={"end_time": f"Must be at or after {start_time.isoformat()}."},
            )
        if end_time - start_time > schemas.MAX_DURATION:
            raise ValidationFailed(
                "A workout lasts at most 24 hours.",
                fields={"end_time": "Must be within 24 hours of the start."},
            )
        duration = round((end_time - start_time).total_seconds() / 60.0, 2)
        calories = workouts.calories_burned(doc["workout_type"], doc["weight_kg"], duration)
        ended = mongo.update(
            self.store.sessions.find_one_and_update,
            {"_id": session_id, "status": "active"},
            {
                "$set": {
                    "status": "ended",
                    "end_time": end_time,
                    "duration": duration,
                    "calories_burned": calories,
                    "updated_at": utcnow(),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        if ended is None:  # another request ended it first: return what that one stored
            return session_view(self._owned_session(session_id, caller_id))
        self._release_active_slot(doc["user_id"], session_id)
        log.info("workout ended", extra={"user.id": caller_id, "session.id": session_id})
        self.report(ended)
        return session_view(ended)

    def record_finished(
        self,
        session_id: str,
        user_id: str,
        workout_type: str,
        start_time: dt.datetime,
        end_time: dt.datetime,
        source: str,
    ) -> bool:
        """Store a workout that already ended elsewhere (a live group session) and count it.

        Idempotent on ``session_id``: return False if it was stored before.
        """
        start_time, end_time = _to_millis(start_time), _to_millis(end_time)
        end_time = min(max(end_time, start_time), start_time + schemas.MAX_DURATION)
        weight_kg, weight_source = self.users.weight_kg(user_id)
        duration = round((end_time - start_time).total_seconds() / 60.0, 2)
        now = utcnow()
        doc = {
            "_id": session_id,
            "user_id": user_id,
            "workout_type": workout_type,
            "status": "ended",
            "start_time": start_time,
            "end_time": end_time,
            "duration": duration,
            "calories_burned": workouts.calories_burned(workout_type, weight_kg, duration),
            "weight_kg": weight_kg,
            "weight_source": weight_source,
            "source": source,
            "progress_reported": False,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.store.sessions.insert_one(doc)
        except DuplicateKeyError:
            return False
        self.report(doc)
        return True

    def _owned_session(self, session_id: str, caller_id: str) -> dict[str, Any]:
        if not _is_uuid(session_id):  # every session id is one; don't ask the store
            raise SessionNotFound(session_id)
        doc = self.store.sessions.find_one({"_id": session_id})
        if doc is None:
            raise SessionNotFound(session_id)
        if doc["user_id"] != caller_id:
            raise PermissionDenied("This workout session belongs to another user.")
        return doc

    def get(self, session_id: str, caller_id: str) -> dict[str, Any]:
        """Return one of the caller's sessions."""
        return session_view(self._owned_session(session_id, caller_id))

    def list(self, user_id: str, limit: int, offset: int) -> dict[str, Any]:
        """Return a page of the user's sessions, newest first, with the total count."""
        docs = self.store.sessions.find(
            sessions_of(user_id), sort=[("start_time", -1)], skip=offset, limit=limit
        )
        total = self.store.sessions.count_documents(sessions_of(user_id))
        return {
            "workouts": [session_view(doc) for doc in docs],
            "total": total,
            "limit": limit,
            "offset": offset,
        }

    def statistics(self, user_id: str) -> dict[str, Any]:
        """Return totals over the user's ended sessions (one read: see ``totals.py``)."""
        totals = self.totals.read(user_id)
        count = int(totals["workouts"])
        duration = round(float(totals["duration"]), 2)
        calories = float(totals["calories"])
        return {
            "total_workouts": count,
            "total_duration": duration,
            "total_calories_burned": round(calories, 1),
            "average_session_duration": round(duration / count, 2) if count else 0.0,
        }

    def report(self, doc: dict[str, Any], inline: bool = True) -> bool:
        """Count an ended session in its owner's totals and report it to the user service.

        Both are idempotent; until both are done the session stays unreported and the outbox
        loop tries again.
        """
        self.totals.add(doc)
        try:
            self.users.record_workout(doc, inline)
        except DomainError as exc:
            log.warning(
                "progress report for %s failed, will retry: %s",
                doc["_id"],
                exc.message,
                extra={"session.id": doc["_id"]},
            )
            return False
        mongo.update(
            self.store.sessions.update_one,
            {"_id": doc["_id"]},
            {"$set": {"progress_reported": True, "updated_at": utcnow()}},
        )
        self.totals.settle(doc)
        return True

    def report_pending(self, stopped: threading.Event) -> None:
        """Re-send ended sessions whose progress report failed, until ``stopped`` is set."""
        while not stopped.wait(REPORT_INTERVAL_SECONDS):
            try:
                self.report_pending_once()
            except Exception:  # keep the loop alive through store outages; they are logged
                log.exception("progress outbox pass failed")

    def report_pending_once(self) -> int:
        """Report every pending ended session once; return how many were delivered."""
        settle_before = utcnow() - dt.timedelta(seconds=REPORT_INTERVAL_SECONDS)
        pending = self.store.sessions.find(unreported(settle_before), limit=REPORT_BATCH)
        return sum(1 for doc in pending if self.report(doc, inline=False))
