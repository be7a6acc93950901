"""After a fuzzing run: read every stored record and check it against the domain rules.

A fuzzer that gets only 4xx answers has still found a bug if something invalid was stored on
the way (a half-validated write, a field the schema forgot). So the fuzz suites read the user
database (SQLite, through SQLAlchemy) and the activity store (through ``fitness.mongo``)
directly, and every record that breaks a rule is reported with the rule it breaks.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from fitness import mongo
from fitness.workouts import (
    GOAL_TYPES,
    MAX_WORKOUT_MINUTES,
    MIN_WORKOUT_MINUTES,
    SESSION_STATUSES,
    WORKOUT_TYPES,
)

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
USER_GOAL_STATUSES = ("active", "cancelled")
COPY_GOAL_STATUSES = ("active", "cancelled", "deleted")
MAX_TARGET = 10_000_000


def invalid_records(data_dir: Path, mongo_url: str) -> list[str]:
    """Return one line per stored record that breaks a domain rule (empty: all valid)."""
    return [*_user_db_problems(data_dir / "users.db"), *_activity_problems(mongo_url)]


def count_records(data_dir: Path, mongo_url: str) -> dict[str, int]:
    """Return how many records each store holds (printed next to the fuzzing figures)."""
    engine = create_engine(f"sqlite:///{data_dir / 'users.db'}")
    with engine.connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("users", "goals")
        }
    engine.dispose()
    db = mongo.connect(mongo_url, "activity")
    for name in ("sessions", "goals", "group_sessions"):
        counts[f"activity.{name}"] = db[name].count_documents({})
    return counts


def _user_db_problems(path: Path) -> Iterator[str]:
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        users = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM users"))]
        goals = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM goals"))]
    engine.dispose()
    user_ids = {u["id"] for u in users}
    for user in users:
        yield from (f"user {user['id']}: {p}" for p in _user_rules(user))
    for goal in goals:
        yield from (f"goal {goal['id']}: {p}" for p in _goal_rules(goal, user_ids))


def _user_rules(user: dict[str, Any]) -> Iterator[str]:
    if not _is_str(user["username"]) or not USERNAME.match(user["username"]):
        yield f"username {user['username']!r} breaks the username rule"
    email = user["email"]
    if not _is_str(email) or len(email) > 254 or not EMAIL.match(email) or email != email.lower():
        yield f"email {email!r} is not a lower-case email address"
    if not _is_str(user["password_hash"]) or len(user["password_hash"]) < 20:
        yield "password_hash missing or too short to be a hash"
    if user["weight_kg"] is not None and not _in_range(user["weight_kg"], 20, 400):
        yield f"weight_kg {user['weight_kg']!r} outside 20..400"
    if not _is_time(user["created_at"]) or not _is_time(user["updated_at"]):
        yield "created_at/updated_at not timestamps"


def _goal_rules(goal: dict[str, Any], user_ids: set[str]) -> Iterator[str]:
    if goal["user_id"] not in user_ids:
        yield f"user_id {goal['user_id']!r} names no user"
    if goal["goal_type"] not in GOAL_TYPES:
        yield f"goal_type {goal['goal_type']!r} unknown"
    if goal["workout_type"] is not None and goal["workout_type"] not in WORKOUT_TYPES:
        yield f"workout_type {goal['workout_type']!r} unknown"
    if not _in_range(goal["target_value"], 0, MAX_TARGET) or goal["target_value"] <= 0:
        yield f"target_value {goal['target_value']!r} outside (0, {MAX_TARGET}]"
    if not _is_date(goal["target_date"]):
        yield f"target_date {goal['target_date']!r} is not a date"
    if not _in_range(goal["current_progress"], 0, math.inf):
        yield f"current_progress {goal['current_progress']!r} negative or not a number"
    if goal["status"] not in USER_GOAL_STATUSES:
        yield f"status {goal['status']!r} unknown"


def _activity_problems(mongo_url: str) -> Iterator[str]:
    db = mongo.connect(mongo_url, "activity")
    for doc in db["sessions"].find({}):
        yield from (f"workout {doc.get('_id')!r}: {p}" for p in _session_rules(doc))
    for doc in db["goals"].find({}):
        yield from (f"goal copy {doc.get('_id')!r}: {p}" for p in _goal_copy_rules(doc))
    for doc in db["group_sessions"].find({}):
        yield from (f"group session {doc.get('_id')!r}: {p}" for p in _group_rules(doc))


def _session_rules(doc: dict[str, Any]) -> Iterator[str]:
    if not _is_id(doc.get("_id")) or not _is_id(doc.get("user_id")):
        yield "_id/user_id missing or not a short string"
    if doc.get("workout_type") not in WORKOUT_TYPES:
        yield f"workout_type {doc.get('workout_type')!r} unknown"
    if doc.get("status") not in SESSION_STATUSES:
        yield f"status {doc.get('status')!r} unknown"
    if not isinstance(doc.get("start_time"), dt.datetime):
        yield "start_time is not a timestamp"
    if not _in_range(doc.get("weight_kg"), 20, 400):
        yield f"weight_kg {doc.get('weight_kg')!r} outside 20..400"
    if doc.get("status") in ("ended", "discarded"):
        yield from _ended_rules(doc)
    counted = _in_range(doc.get("duration"), MIN_WORKOUT_MINUTES, MAX_WORKOUT_MINUTES)
    finished = doc.get("status") in ("ended", "discarded")
    if (
        finished
        and _in_range(doc.get("duration"), 0, MAX_WORKOUT_MINUTES)
        and counted != (doc["status"] == "ended")
    ):
        yield f"{doc['status']} with duration {doc.get('duration')!r} (the minimum decides)"


def _ended_rules(doc: dict[str, Any]) -> Iterator[str]:
    start, end = doc.get("start_time"), doc.get("end_time")
    if not isinstance(end, dt.datetime) or not isinstance(start, dt.datetime):
        yield "an ended workout without start_time/end_time timestamps"
    elif end < start:
        yield "end_time before start_time"
    if not _in_range(doc.get("duration"), 0, MAX_WORKOUT_MINUTES):
        yield f"duration {doc.get('duration')!r} outside 0..{MAX_WORKOUT_MINUTES} minutes"
    if not _in_range(doc.get("calories_burned"), 0, math.inf):
        yield f"calories_burned {doc.get('calories_burned')!r} negative or not a number"


def _goal_copy_rules(doc: dict[str, Any]) -> Iterator[str]:
    if not _is_id(doc.get("_id")) or not _is_id(doc.get("user_id")):
        yield "_id/user_id missing or not a short string"
    if doc.get("goal_type") not in GOAL_TYPES:
        yield f"goal_type {doc.get('goal_type')!r} unknown"
    if doc.get("workout_type") is not None and doc.get("workout_type") not in WORKOUT_TYPES:
        yield f"workout_type {doc.get('workout_type')!r} unknown"
    target = doc.get("target_value")
    if not _in_range(target, 0, MAX_TARGET) or target <= 0:
        yield f"target_value {target!r} outside (0, {MAX_TARGET}]"
    if not _is_date(doc.get("target_date")):
        yield f"target_date {doc.get('target_date')!r} is not an ISO date"
    if doc.get("status") not in COPY_GOAL_STATUSES:
        yield f"status {doc.get('status')!r} unknown"


def _group_rules(doc: dict[str, Any]) -> Iterator[str]:
    if doc.get("workout_type") not in WORKOUT_TYPES:
        yield f"workout_type {doc.get('workout_type')!r} unknown"
    if not _is_id(doc.get("creator_id")):
        yield "creator_id missing"
    start, end = doc.get("start_time"), doc.get("end_time")
    if not (isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and start <= end):
        yield "start_time/end_time missing or out of order"
    members = doc.get("participants")
    if not isinstance(members, list) or not all(_is_id(m.get("user_id")) for m in members):
        yield "participants missing or without user ids"


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 64


def _in_range(value: Any, low: float, high: float) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and low <= value <= high


def _is_iso(value: Any, kind: type[dt.date]) -> bool:
    """Whether ``value`` is a ``kind`` (date or datetime) or its ISO-8601 text."""
    if isinstance(value, kind):
        return True
    try:
        kind.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _is_time(value: Any) -> bool:
    return _is_iso(value, dt.datetime)


def _is_date(value: Any) -> bool:
    return _is_iso(value, dt.date)
