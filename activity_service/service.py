"""Workout sessions, calories and statistics: the activity service's domain logic."""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from activity_service import schemas, totals
from activity_service.exceptions import (
    SessionAlreadyActive,
    SessionNotFound,
    UserNotFound,
    WorkoutExists,
)
from activity_service.store import ActivityStore
from activity_service.totals import Totals
from fitness import mongo, workouts
from fitness.clock import as_utc, to_millis, utcnow
from fitness.errors import DomainError, NotFound, PermissionDenied, Unavailable, ValidationFailed
from fitness.goals import MAX_WORKOUTS_PER_REPORT
from fitness.rpc import ServiceClient
from fitness.v1 import user_pb2

log = logging.getLogger(__name__)

REPORT_INTERVAL_SECONDS = 5.0
REPORT_BATCH = 100
SLOT_CLAIM = dt.timedelta(seconds=10)
"""How long a claimed active-session slot that names no stored session yet stays its start's,
so only a start that crashed loses it. A start that took over half of it checks that it still
holds the slot once its session is stored, and withdraws the session if not."""
# Namespace of session ids derived from (user, Idempotency-Key); any fixed UUID would do.
_KEYED_SESSIONS = uuid.UUID("6f1d0c52-3b7e-4d0a-9a43-2f5e8c1b7d90")
# Namespace of logged and imported workouts' ids, derived from (user, type, start).
_FINISHED_WORKOUTS = uuid.UUID("0b6f3c2e-8d51-4f0e-b7a9-5c3d2e1f4a68")
WORKOUT_DETAILS = (  # what a file or a log may add to a workout
    "distance_km",
    "elevation_gain_m",
    "average_heart_rate",
)


def session_view(doc: dict[str, Any]) -> dict[str, Any]:
    """Return a session document in the API's shape (times ISO-8601, duration in minutes)."""
    end_time = doc.get("end_time")
    return {
        "session_id": doc["_id"],
        "user_id": doc["user_id"],
        "workout_type": doc["workout_type"],
        "status": doc["status"],
        "source": source_kind(doc.get("source")),
        "start_time": as_utc(doc["start_time"]).isoformat(),
        "end_time": as_utc(end_time).isoformat() if end_time else None,
        "duration": doc.get("duration"),
        "calories_burned": doc.get("calories_burned"),
        **{name: doc.get(name) for name in WORKOUT_DETAILS},
        "sets": doc.get("sets", []),
    }


def keyed_session_id(user_id: str, idempotency_key: str) -> str:
    """Return the id of the session a start with ``idempotency_key`` stores (every time)."""
    return str(uuid.uuid5(_KEYED_SESSIONS, f"{user_id}\n{idempotency_key}"))


def _claimed_lately(slot: dict[str, Any]) -> bool:
    """Tell whether an active-session slot was claimed within ``SLOT_CLAIM``."""
    claimed_at = slot.get("claimed_at")
    return claimed_at is not None and utcnow() - as_utc(claimed_at) < SLOT_CLAIM


def _counted(doc: dict[str, Any]) -> bool:
    return doc["status"] == "ended"


def source_kind(source: str | None) -> str:
    """Return where a session came from: "live", "group", "logged" or "import".

    Group workouts store ``group:<group session id>``; live sessions store nothing.
    """
    return (source or "live").partition(":")[0]


@dataclass(frozen=True)
class FinishedWorkout:
    """A workout that happened elsewhere: logged after the fact, or read from a file."""

    workout_type: str
    start_time: dt.datetime
    end_time: dt.datetime
    calories_burned: float | None = None  # None: from METs and the user's weight
    details: dict[str, float] = field(default_factory=dict)  # distance_km, … (``WORKOUT_DETAILS``)
    sets: tuple[dict[str, Any], ...] = ()
    source: str = "logged"

    def session_id(self, user_id: str) -> str:
        """Return the id this workout gets: the same user, type and start give the same id,
        so logging or importing it twice stores it once."""
        start = to_millis(self.start_time).isoformat()
        return str(uuid.uuid5(_FINISHED_WORKOUTS, f"{user_id}\n{self.workout_type}\n{start}"))


def logged_workout(
    body: schemas.LogWorkoutBody, least_minutes: float, source: str = "logged"
) -> FinishedWorkout:
    """Return the workout a validated log body describes (see ``finished_span``)."""
    return FinishedWorkout(
        workout_type=body.workout_type,
        start_time=body.start_time,
        end_time=finished_span(body.start_time, body.end_time, body.duration, least_minutes),
        calories_burned=body.calories_burned,
        details=body.model_dump(include=set(WORKOUT_DETAILS)),
        sets=tuple(one.model_dump(exclude_none=True) for one in body.sets),
        source=source,
    )


def finished_span(
    start_time: dt.datetime,
    end_time: dt.datetime | None,
    duration: float | None,
    least_minutes: float,
) -> dt.datetime:
    """Return the end of a workout given by its end or its duration in minutes (exactly one).

    Raise ``ValidationFailed`` when it ends before it starts, lasts longer than a day or less
    than ``least_minutes`` (a logged workout that would not count is a mistake, so it is
    refused rather than stored as discarded), or would end in the future.
    """
    if (end_time is None) == (duration is None):
        raise ValidationFailed(
            "Give the workout's end_time or its duration in minutes, not both.",
            fields={"end_time": "Give this or duration.", "duration": "Give this or end_time."},
        )
    end = end_time or start_time + dt.timedelta(minutes=duration or 0)
    minutes = (end - start_time).total_seconds() / 60
    if end - start_time > schemas.MAX_DURATION:
        raise ValidationFailed(
            "A workout lasts at most 24 hours.",
            fields={"end_time": "Must be within 24 hours of the start."},
        )
    if minutes < least_minutes:
        least = f"{least_minutes:g} minute(s)"
        raise ValidationFailed(
            f"A workout lasts at least {least}.",
            fields={"end_time" if end_time else "duration": f"Must be at least {least}."},
        )
    if end > dt.datetime.now(dt.UTC) + schemas.MAX_CLOCK_SKEW:
        raise ValidationFailed(
            "The workout would end in the future.",
            fields={"end_time" if end_time else "duration": "Must end by now."},
        )
    return end


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
        """Return the user's weight and where it came from (``workouts.WEIGHT_SOURCES``)."""
        request = user_pb2.GetUserRequest(user_id=user_id)
        try:
            user = self.client.call("GetUser", request, timeout=self.inline_timeout)
        except NotFound:
            raise UserNotFound(user_id) from None
        except Unavailable as exc:
            log.warning("using the default body weight: %s", exc.message)
            return workouts.DEFAULT_BODY_WEIGHT_KG, workouts.WEIGHT_DEFAULT
        if user.weight_kg > 0:
            return user.weight_kg, workouts.WEIGHT_FROM_PROFILE
        return workouts.DEFAULT_BODY_WEIGHT_KG, workouts.WEIGHT_DEFAULT

    def account(self, user_id: str) -> dict[str, Any]:
        """Return the user's account as the user service keeps it (for an export)."""
        user = self.client.call("GetUser", user_pb2.GetUserRequest(user_id=user_id))
        return MessageToDict(
            user, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    def goals(self, user_id: str) -> list[dict[str, Any]]:
        """Return the user's goals as the user service keeps them (for an export)."""
        found = self.client.call("ListUserGoals", user_pb2.ListGoalsRequest(user_id=user_id))
        return [
            MessageToDict(
                goal, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
            for goal in found.goals
        ]

    def record_workout(self, doc: dict[str, Any], inline: bool = True) -> None:
        """Count an ended session towards the owner's goals (idempotent on the session id).

        ``inline``: a client is waiting, so use the short deadline (the outbox retries).
        """
        request = _record_request(doc)
        self.client.call("RecordWorkout", request, timeout=self.inline_timeout if inline else None)

    def record_workouts(self, docs: list[dict[str, Any]], inline: bool = True) -> None:
        """``record_workout`` for up to ``MAX_WORKOUTS_PER_REPORT`` sessions in one call (one
        transaction in the user service)."""
        request = user_pb2.RecordWorkoutsRequest(workouts=[_record_request(d) for d in docs])
        self.client.call("RecordWorkouts", request, timeout=self.inline_timeout if inline else None)


def _record_request(doc: dict[str, Any]) -> user_pb2.RecordWorkoutRequest:
    return user_pb2.RecordWorkoutRequest(
        session_id=doc["_id"],
        user_id=doc["user_id"],
        workout_type=doc["workout_type"],
        duration_minutes=doc["duration"],
        calories_burned=doc["calories_burned"],
        ended_at=as_utc(doc["end_time"]).isoformat(),
    )


class WorkoutService:
    """Start and end workout sessions; count finished ones and report them to the user service."""

    def __init__(
        self,
        store: ActivityStore,
        users: UserDirectory,
        min_minutes: float = workouts.MIN_WORKOUT_MINUTES,
    ):
        if not 0 <= min_minutes <= 60:
            raise ValueError(f"the minimum workout must be 0 to 60 minutes, not {min_minutes}")
        self.store = store
        self.users = users
        self.totals = Totals(store)
        self.min_minutes = min_minutes

    def counts(self, duration_minutes: float) -> bool:
        """Tell whether a workout this long counts (see ``workouts.MIN_WORKOUT_MINUTES``)."""
        return duration_minutes >= self.min_minutes

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
            session_id = keyed_session_id(user_id, idempotency_key)
            if (earlier := self.store.sessions.find_one({"_id": session_id})) is not None:
                return session_view(earlier)
        else:
            session_id = str(uuid.uuid4())
        weight_kg, weight_source = self.users.weight_kg(user_id)
        claimed = time.monotonic()
        self._claim_active_slot(user_id, session_id)
        now = utcnow()
        doc: dict[str, Any] = {
            "_id": session_id,
            "user_id": user_id,
            "workout_type": workout_type,
            "status": "active",
            "start_time": to_millis(start_time) if start_time else now,
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
            self._release_unless_stored(user_id, session_id)
            raise
        if time.monotonic() - claimed > SLOT_CLAIM.total_seconds() / 2:
            self._confirm_slot(user_id, session_id)
        log.info("workout started", extra={"user.id": user_id, "session.id": session_id})
        return session_view(doc)

    def _claim_active_slot(self, user_id: str, session_id: str) -> None:
        """Take the user's one active-session slot, or raise ``SessionAlreadyActive``.

        The slot document stays once made: ending a session frees it (``session_id`` None), so
        every change of hands is a conditional update, never a delete racing an insert. A free
        slot, or none yet, is taken in one upsert (the common case: one round trip, not three);
        a held one refuses the upsert's insert with a duplicate key.
        """
        claim = {"$set": {"session_id": session_id, "claimed_at": utcnow()}}
        try:
            mongo.update(
                self.store.active_sessions.find_one_and_update,
                {"_id": user_id, "session_id": None},
                claim,
                upsert=True,
            )
            return
        except DuplicateKeyError:
            pass
        holder = self.store.active_sessions.find_one({"_id": user_id}) or {}
        held_by = holder.get("session_id")
        if held_by != session_id:  # not this start sent again (its key) after it claimed it
            current = self.store.sessions.find_one({"_id": held_by}) if held_by else None
            if current is not None and current["status"] == "active":
                raise SessionAlreadyActive(current["_id"])
            if current is None and held_by and _claimed_lately(holder):
                raise SessionAlreadyActive(held_by)  # its start is storing the session now
        # Ours already, free, or it outlived its session: a crash between ending it and freeing
        # the slot, or between claiming the slot and storing the session. Taken only as read
        # (its revision): of a resend and a takeover at once, one wins.
        seen = {"_id": user_id, "session_id": held_by, mongo.REVISION: holder.get(mongo.REVISION)}
        if mongo.update(self.store.active_sessions.find_one_and_update, seen, claim) is None:
            raise SessionAlreadyActive(self._active_session_id(user_id))

    def _confirm_slot(self, user_id: str, session_id: str) -> None:
        """Undo a start that took long enough for its claim to be taken over, if it was.

        Another start took the slot over as left by a crash; that one stands.
        """
        if (holder := self._active_session_id(user_id)) != session_id:
            self.store.sessions.delete_one({"_id": session_id, "status": "active"})
            raise SessionAlreadyActive(holder)

    def _release_unless_stored(self, user_id: str, session_id: str) -> None:
        """Free the slot of a start whose insert failed, unless the store applied it after all
        (an answer lost to a timeout). If the store can't say, the claim runs out instead."""
        try:
            if self.store.sessions.find_one({"_id": session_id}) is None:
                self._release_active_slot(user_id, session_id)
        except PyMongoError as exc:
            log.warning("slot of %s left to run out: %s", session_id, exc)

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
        """End a session; ending it again returns the first result and counts once.

        A session shorter than the minimum ends as "discarded": kept, counted nowhere.
        """
        doc = self._owned_session(session_id, caller_id)
        if doc["status"] != "active":
            return session_view(doc)
        end_time = to_millis(end_time) if end_time else utcnow()
        start_time = as_utc(doc["start_time"])
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
                    "status": "ended" if self.counts(duration) else "discarded",
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
        log.info(
            "workout %s",
            ended["status"],
            extra={"user.id": caller_id, "session.id": session_id},
        )
        if ended["status"] == "ended":
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
        start_time, end_time = to_millis(start_time), to_millis(end_time)
        end_time = min(max(end_time, start_time), start_time + schemas.MAX_DURATION)
        workout = FinishedWorkout(workout_type, start_time, end_time, source=source)
        return self._store_finished(session_id, user_id, workout) is None

    def log(self, user_id: str, workout: FinishedWorkout) -> dict[str, Any]:
        """Store a finished workout (any past date) and count it like a live one.

        Raise ``WorkoutExists`` if the user has one of the same type starting at the same time.
        """
        session_id, stored_now = self.store_imported(user_id, workout)
        if not stored_now:
            raise WorkoutExists(session_id)
        log.info("workout logged", extra={"user.id": user_id, "session.id": session_id})
        return self.get(session_id, user_id)

    def store_imported(self, user_id: str, workout: FinishedWorkout) -> tuple[str, bool]:
        """Store a logged or imported workout under its derived id; return (id, stored now)."""
        session_id = workout.session_id(user_id)
        return session_id, self._store_finished(session_id, user_id, workout) is None

    def store_imported_many(
        self, user_id: str, batch: list[FinishedWorkout]
    ) -> list[tuple[str, bool]]:
        """Store an import's workouts at once; return (id, stored now) for each, in order.

        One weight lookup, one insert, one totals update and the progress reports side by side:
        one at a time, each workout cost eight round trips (about 15 ms).
        """
        weight = self.users.weight_kg(user_id)
        docs = [self._finished_doc(w.session_id(user_id), user_id, w, weight) for w in batch]
        refused = mongo.insert_new(self.store.sessions, docs)
        self.report_many([d for i, d in enumerate(docs) if i not in refused and _counted(d)])
        return [(doc["_id"], i not in refused) for i, doc in enumerate(docs)]

    def _store_finished(
        self, session_id: str, user_id: str, workout: FinishedWorkout
    ) -> dict[str, Any] | None:
        """Insert and count a finished workout; return the one stored before under its id."""
        doc = self._finished_doc(session_id, user_id, workout, self.users.weight_kg(user_id))
        try:
            self.store.sessions.insert_one(doc)
        except DuplicateKeyError:
            return self.store.sessions.find_one({"_id": session_id}) or doc
        if _counted(doc):
            self.report(doc)
        return None

    def _finished_doc(
        self,
        session_id: str,
        user_id: str,
        workout: FinishedWorkout,
        weight: tuple[float, str],
    ) -> dict[str, Any]:
        """Return the stored document of a finished workout (calories from METs if not given)."""
        start_time, end_time = to_millis(workout.start_time), to_millis(workout.end_time)
        duration = round((end_time - start_time).total_seconds() / 60.0, 2)
        weight_kg, weight_source = weight
        calories = workout.calories_burned
        if calories is None:
            calories = workouts.calories_burned(workout.workout_type, weight_kg, duration)
        now = utcnow()
        doc: dict[str, Any] = {
            "_id": session_id,
            "user_id": user_id,
            "workout_type": workout.workout_type,
            "status": "ended" if self.counts(duration) else "discarded",
            "start_time": start_time,
            "end_time": end_time,
            "duration": duration,
            "calories_burned": round(calories, 1),
            **{name: value for name, value in workout.details.items() if value is not None},
            "weight_kg": weight_kg,
            "weight_source": weight_source,
            "source": workout.source,
            "progress_reported": False,
            "created_at": now,
            "updated_at": now,
        }
        if workout.sets:
            doc["sets"] = [dict(one) for one in workout.sets]
        return doc

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
        return totals.statistics(self.totals.read(user_id))

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

    def report_many(self, docs: builtins.list[dict[str, Any]]) -> None:
        """``report`` for many ended sessions of one user: one totals update, the reports
        ``MAX_WORKOUTS_PER_REPORT`` to a call, and the delivered ones marked. What fails waits
        for the outbox loop."""
        if not docs:
            return
        self.totals.add_many(docs)
        delivered: builtins.list[str] = []
        for start in range(0, len(docs), MAX_WORKOUTS_PER_REPORT):
            chunk = docs[start : start + MAX_WORKOUTS_PER_REPORT]
            try:
                self.users.record_workouts(chunk)
            except DomainError as exc:
                log.warning(
                    "progress reports of %d sessions failed, will retry: %s", len(chunk), exc
                )
                continue
            delivered += [doc["_id"] for doc in chunk]
        if delivered:
            mongo.update_each(
                self.store.sessions,
                delivered,
                {"$set": {"progress_reported": True, "updated_at": utcnow()}},
            )
            self.totals.settle_many(docs[0]["user_id"], delivered)

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
