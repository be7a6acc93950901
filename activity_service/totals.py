"""Each user's running totals, kept beside the sessions so statistics read one document.

Statistics used to sum a user's ended sessions on every read, which costs as much as the user has
sessions (on FerretDB about 0.1 ms each, decoded one by one). Now each ended session is added to
the user's totals document once, as part of reporting it (``WorkoutService.report``), and a read
is one lookup by ``_id`` whatever the history.

Exactly once: the add and its record are one conditional update (the session id goes into the
document's ``counting`` list, and the update only applies while it is absent), so a repeated
report adds nothing. Once the session is marked reported, its id leaves the list again. A user
whose totals do not exist yet (their sessions predate this document) gets them built from the
sessions already reported, the ones a report can no longer add.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.errors import DuplicateKeyError

from activity_service.store import ActivityStore
from fitness import mongo

_SUMS = ("workouts", "duration", "calories")


def sum_sessions(sessions: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Return what ended sessions add to their owner's totals: one workout each, their
    minutes and their kcal (a session without calories yet adds none)."""
    sums: dict[str, float] = {"workouts": 0, "duration": 0.0, "calories": 0.0}
    for session in sessions:
        sums["workouts"] += 1
        sums["duration"] += float(session.get("duration") or 0.0)
        sums["calories"] += float(session.get("calories_burned") or 0.0)
    return sums


def statistics(totals: Mapping[str, float]) -> dict[str, Any]:
    """Return the statistics a user reads from their totals, rounded as the API shows them
    (minutes to 0.01, kcal to 0.1; the average is 0 before the first workout)."""
    count = int(totals["workouts"])
    duration = round(float(totals["duration"]), 2)
    return {
        "total_workouts": count,
        "total_duration": duration,
        "total_calories_burned": round(float(totals["calories"]), 1),
        "average_session_duration": round(duration / count, 2) if count else 0.0,
    }


class Totals:
    """Users' totals of ended sessions: workouts, minutes and kcal."""

    def __init__(self, store: ActivityStore):
        self.store = store

    def read(self, user_id: str) -> dict[str, float]:
        """Return the user's totals (built from their sessions the first time)."""
        doc = self.store.user_totals.find_one({"_id": user_id}) or self._build(user_id)
        return {name: doc.get(name, 0) for name in _SUMS}

    def add(self, session: dict[str, Any]) -> None:
        """Add an ended session to its owner's totals, unless it was added already."""
        user_id, session_id = session["user_id"], session["_id"]
        change = {"$inc": sum_sessions([session]), "$push": {"counting": session_id}}
        query = {"_id": user_id, "counting": {"$ne": session_id}}
        if mongo.update(self.store.user_totals.update_one, query, change).matched_count:
            return
        # Nothing matched: added already, or the user had no totals yet (the rare case). They
        # may exist by now all the same, built by the user's first read meanwhile from the
        # sessions reported before this one: so build them if they are still missing, and
        # try again either way (the query adds nothing if this session was added already).
        self._build_if_missing(user_id)
        mongo.update(self.store.user_totals.update_one, query, change)

    def add_many(self, sessions: list[dict[str, Any]]) -> None:
        """``add`` for many new sessions of one user, in one update while none is counted yet."""
        user_id, ids = sessions[0]["user_id"], [s["_id"] for s in sessions]
        change = {"$inc": sum_sessions(sessions), "$push": {"counting": {"$each": ids}}}
        query = {"_id": user_id, "counting": {"$nin": ids}}
        if mongo.update(self.store.user_totals.update_one, query, change).matched_count:
            return
        # No totals yet (a user's first workouts: build them, as ``add`` does, and try the batch
        # again), or some of these counted already: then one by one.
        missing = self._build_if_missing(user_id)
        if missing and mongo.update(self.store.user_totals.update_one, query, change).matched_count:
            return
        for session in sessions:
            self.add(session)

    def settle_many(self, user_id: str, session_ids: list[str]) -> None:
        """``settle`` for many sessions of one user."""
        mongo.update(
            self.store.user_totals.update_one,
            {"_id": user_id},
            {"$pull": {"counting": {"$in": session_ids}}},
        )

    def settle(self, session: dict[str, Any]) -> None:
        """Forget a session's id once it is marked reported (a report can't add it again)."""
        mongo.update(
            self.store.user_totals.update_one,
            {"_id": session["user_id"]},
            {"$pull": {"counting": session["_id"]}},
        )

    def _build_if_missing(self, user_id: str) -> bool:
        """Build the user's totals if they have none yet; return whether they were missing."""
        if self.store.user_totals.find_one({"_id": user_id}, {"_id": 1}) is not None:
            return False
        self._build(user_id)
        return True

    def _build(self, user_id: str) -> dict[str, Any]:
        """Create the user's totals from their reported sessions; return what is stored."""
        reported = {"user_id": user_id, "status": "ended", "progress_reported": True}
        fields = {"_id": 0, "duration": 1, "calories_burned": 1}
        doc: dict[str, Any] = {
            "_id": user_id,
            **sum_sessions(self.store.sessions.find(reported, fields)),
        }
        try:
            self.store.user_totals.insert_one({**doc, "counting": []})
        except DuplicateKeyError:  # built meanwhile by another request: that one stands
            return self.store.user_totals.find_one({"_id": user_id}) or doc
        return doc
