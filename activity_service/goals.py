"""The activity service's copy of users' goals, and the workout suggestions derived from it.

Goals are owned by the user service; the saga coordinator tells this service about every
creation, change and cancellation (``ApplyGoal``) so it can suggest workouts without a call
across services on each read. Each saga step is applied once: a repeated delivery, even after
a later step changed the goal again, changes nothing.

The suggestion rule, per active goal whose date has not passed:

1. progress = the user's ended sessions since the goal was created (of its workout type, if it
   has one), counted the goal's way (sessions, minutes or kcal); remaining = target - progress;
2. the workout type is the goal's, else the user's most frequent one over the last 14 days,
   else walking; a session lasts the user's average over those 14 days (10-120 min, default 30);
3. what remains is spread evenly over the days left: sessions per week = remaining sessions
   per week left (workout_count), or the weekly minutes needed divided by the session length
   (active_minutes; calories_burned via the type's MET and the user's last known weight).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from pymongo.errors import DuplicateKeyError

from activity_service.store import ActivityStore
from fitness import mongo, workouts

RECENT_DAYS = 14
DEFAULT_SESSION_MINUTES = 30.0


class GoalRegistry:
    """Goal states applied by sagas, and suggestions computed from them and recent sessions."""

    def __init__(self, store: ActivityStore):
        self.store = store

    def apply(
        self, state: dict[str, Any], saga_id: str, step: str, supersedes: tuple[str, ...] = ()
    ) -> bool:
        """Set the goal to ``state`` unless this saga step was applied; return if it was now.

        The goal document carries the steps applied to it, and one conditional update both
        checks and records them, so a crash can't separate the change from its record. A
        compensation also records the steps it undoes: a late delivery of them is ignored.
        """
        marks = [f"{saga_id}:{name}" for name in (step, *supersedes)]
        change = {"$set": _goal_doc(state), "$addToSet": {"applied_steps": {"$each": marks}}}
        # A duplicate key means the filter matched nothing and the upsert's insert met the goal:
        # either it has this step already (the second try collides again), or another step's
        # delivery created it a moment ago (the second try updates it).
        for _ in range(2):
            try:
                mongo.update(
                    self.store.goals.update_one,
                    {"_id": state["goal_id"], "applied_steps": {"$ne": marks[0]}},
                    change,
                    upsert=True,
                )
            except DuplicateKeyError:
                continue
            return True
        return False

    def suggestions(self, user_id: str, today: dt.date | None = None) -> dict[str, Any]:
        """Return suggested workouts for the user's active goals (rule in the module docstring)."""
        today = today or dt.datetime.now(dt.UTC).date()
        goals = [
            g
            for g in self.store.goals.find({"user_id": user_id, "status": workouts.GOAL_ACTIVE})
            if g["target_date"] >= today.isoformat()
        ]
        since = _start_of(today - dt.timedelta(days=RECENT_DAYS))
        if goals:
            since = min(since, *(_parse_time(g["created_at"]) for g in goals))
        sessions = list(
            self.store.sessions.find(
                {"user_id": user_id, "status": "ended", "end_time": {"$gte": since}}
            )
        )
        habits = _habits(sessions, _start_of(today - dt.timedelta(days=RECENT_DAYS)))
        found = [_suggest(goal, sessions, habits, today) for goal in goals]
        return {
            "user_id": user_id,
            "suggestions": sorted(found, key=lambda s: (s["days_left"], s["goal_id"])),
            "rule": "remaining target spread evenly over the days left; see docs/api.md",
        }


def _goal_doc(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": state["user_id"],
        "goal_type": state["goal_type"],
        "workout_type": state.get("workout_type") or None,
        "target_value": float(state["target_value"]),
        "target_date": state["target_date"],
        "status": state["status"],
        "created_at": state["created_at"],
        "updated_at": dt.datetime.now(dt.UTC),
    }


def _habits(sessions: list[dict[str, Any]], since: dt.datetime) -> dict[str, Any]:
    recent = [s for s in sessions if _aware(s["end_time"]) >= since]
    minutes = [float(s.get("duration") or 0) for s in recent]
    average = sum(minutes) / len(minutes) if minutes else DEFAULT_SESSION_MINUTES
    types = Counter(s["workout_type"] for s in recent)
    latest = max(sessions, key=lambda s: _aware(s["end_time"]), default=None)
    return {
        "minutes": min(120.0, max(10.0, average)),
        "workout_type": types.most_common(1)[0][0] if types else "walking",
        "weight_kg": (latest or {}).get("weight_kg") or workouts.DEFAULT_BODY_WEIGHT_KG,
    }


def _suggest(
    goal: dict[str, Any], sessions: list[dict[str, Any]], habits: dict[str, Any], today: dt.date
) -> dict[str, Any]:
    workout_type = goal.get("workout_type") or habits["workout_type"]
    remaining = max(0.0, goal["target_value"] - _progress(goal, sessions))
    days_left = (dt.date.fromisoformat(goal["target_date"]) - today).days + 1
    weeks_left = max(1.0, days_left / 7)
    minutes = habits["minutes"]
    if goal["goal_type"] == "workout_count":
        per_week = math.ceil(remaining / weeks_left)
    else:
        needed = remaining
        if goal["goal_type"] == "calories_burned":
            per_minute = workouts.calories_burned(workout_type, habits["weight_kg"], 60) / 60
            needed = remaining / per_minute
        per_week = math.ceil(needed / weeks_left / minutes)
    return {
        "goal_id": goal["_id"],
        "goal_type": goal["goal_type"],
        "workout_type": workout_type,
        "duration_minutes": round(minutes),
        "sessions_per_week": per_week,
        "remaining": round(remaining, 1),
        "days_left": days_left,
        "reason": _reason(goal, remaining, days_left),
    }


def _reason(goal: dict[str, Any], remaining: float, days_left: int) -> str:
    if remaining <= 0:
        return "Target reached; keep it up."
    unit = {"workout_count": "workouts", "active_minutes": "minutes", "calories_burned": "kcal"}
    return f"{remaining:g} {unit[goal['goal_type']]} to go in {days_left} day(s)."


def _progress(goal: dict[str, Any], sessions: list[dict[str, Any]]) -> float:
    created = _parse_time(goal["created_at"])
    counted = [
        s
        for s in sessions
        if _aware(s["end_time"]) >= created
        and (not goal.get("workout_type") or s["workout_type"] == goal["workout_type"])
    ]
    if goal["goal_type"] == "workout_count":
        return float(len(counted))
    field = "duration" if goal["goal_type"] == "active_minutes" else "calories_burned"
    return sum(float(s.get(field) or 0) for s in counted)


def _parse_time(value: str) -> dt.datetime:
    return _aware(dt.datetime.fromisoformat(value))


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
