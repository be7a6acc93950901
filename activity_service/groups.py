"""Finished live group sessions: kept whole, and turned into one workout per participant.

The gateway runs live sessions in Redis and hands a session over when its creator ends it. The
whole session (participants, timeline, exercises, votes, chat) is stored once, keyed by its id;
each participant then gets an ended workout from their join to their leave (or the end) that
counts in their statistics and goals like any other. A repeated hand-over changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from pymongo.errors import DuplicateKeyError

from activity_service.service import WorkoutService
from activity_service.store import ActivityStore
from fitness.clock import utcnow
from fitness.errors import ValidationFailed
from fitness.workouts import WORKOUT_TYPES

# Namespace of participants' workout ids, derived from (group session, user).
_GROUP_WORKOUTS = uuid.UUID("2b5f3c7e-81d4-4f6a-9e0b-5c1d7a3e9f42")


class GroupSessions:
    """Save finished group sessions and the participants' workouts."""

    def __init__(self, store: ActivityStore, workouts: WorkoutService):
        self.store = store
        self.workouts = workouts

    def save(self, session: dict[str, Any]) -> tuple[bool, list[str]]:
        """Store ``session`` (see the module docstring); return (stored now, workout ids)."""
        doc = _group_doc(session)
        try:
            self.store.group_sessions.insert_one(doc)
            stored = True
        except DuplicateKeyError:
            stored = False
        # Even after a repeat, make sure every participant's workout exists (idempotent).
        ids = [self._participant_workout(doc, member) for member in doc["participants"]]
        return stored, ids

    def _participant_workout(self, doc: dict[str, Any], member: dict[str, Any]) -> str:
        workout_id = str(uuid.uuid5(_GROUP_WORKOUTS, f"{doc['_id']}\n{member['user_id']}"))
        self.workouts.record_finished(
            workout_id,
            member["user_id"],
            doc["workout_type"],
            member["joined_at"],
            min(member["left_at"] or doc["end_time"], doc["end_time"]),
            source=f"group:{doc['_id']}",
        )
        return workout_id


def _group_doc(session: dict[str, Any]) -> dict[str, Any]:
    if session["workout_type"] not in WORKOUT_TYPES:
        raise ValidationFailed(f"Unknown workout type {session['workout_type']!r}.")
    timeline = _json_list(session, "timeline_json")
    now = utcnow()
    return {
        "_id": session["group_session_id"],
        "creator_id": session["creator_id"],
        "workout_type": session["workout_type"],
        "name": session["name"],
        "start_time": _time(session["started_at"]),
        "end_time": _time(session["ended_at"]),
        "participants": [
            {
                "user_id": p["user_id"],
                "joined_at": _time(p["joined_at"]),
                "left_at": _time(p["left_at"]) if p["left_at"] else None,
            }
            for p in session["participants"]
        ],
        "timeline": timeline,
        "chat": [event for event in timeline if event.get("type") == "chat_message"],
        "exercises": _json_list(session, "exercises_json"),
        "votes": _json_list(session, "votes_json"),
        "created_at": now,
        "updated_at": now,
    }


def _time(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{value!r} is not an ISO-8601 timestamp.") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def _json_list(session: dict[str, Any], name: str) -> list[Any]:
    try:
        found = json.loads(session[name] or "[]")
    except ValueError:
        raise ValidationFailed(f"{name} must be a JSON array.") from None
    if not isinstance(found, list):
        raise ValidationFailed(f"{name} must be a JSON array.")
    return found
