"""Transform: check each source row and turn it into a line of PostgreSQL COPY text.

A row that breaks a rule raises ``Rejected`` with a reason code and a sentence; ``transform``
turns it into a ``rejected_rows`` line carrying the raw row as JSON, so nothing is dropped
silently and one bad row never fails a run. Sessions are the bulk of the data, so their path is
written for speed: times leave as epoch milliseconds (BSON dates are milliseconds, so nothing is
lost), and only rare values go through the general escaping.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from fitness.workouts import (
    GOAL_STATUSES,
    GOAL_TYPES,
    MAX_WORKOUT_MINUTES,
    WEIGHT_SOURCES,
    WORKOUT_METS,
)

MAX_CALORIES = 100_000
MAX_KEY_LENGTH = 128
MAX_REASON_LENGTH = 500
NULL = "\\N"

_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_EPOCH_AWARE = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)
_DAY_MS = 86_400_000
_DATE_KEYS: dict[int, int] = {}  # day number -> yyyymmdd, a memo: few distinct days per run
# The form the activity service writes (str(uuid.uuid4())) and PostgreSQL's uuid type prints
# back: a session id in any other form would not come back as it went in.
_is_uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": ""})


class Rejected(Exception):
    """A source row that can't be loaded, and why."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason[:MAX_REASON_LENGTH]


@dataclass
class Transformed:
    """One batch, transformed: COPY lines to load, rejection lines, and the dates referred to.

    For sessions also: ``fresh``, lines of sessions created after the last run (they can be
    appended, no upsert needed), and ``distinct_days``: no two sessions of the batch count on
    the same (user, day, workout type), so their daily activity needs no summing up.
    """

    lines: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    dates: set[int] = field(default_factory=set)
    fresh: list[str] = field(default_factory=list)
    distinct_days: bool = False


def text(value: Any) -> str:
    """Return ``value`` as a COPY text field (``\\N`` for None; tabs, newlines escaped)."""
    if value is None:
        return NULL
    return str(value).translate(_COPY_ESCAPES)


def millis(value: Any, name: str) -> int:
    """Return a date as epoch milliseconds, or reject the row."""
    if type(value) is not dt.datetime:
        raise Rejected("bad_time", f"{name} is not a date: {value!r}")
    return (value - (_EPOCH_NAIVE if value.tzinfo is None else _EPOCH_AWARE)) // _MILLISECOND


def date_key(epoch_ms: int) -> int:
    """Return the yyyymmdd key of the UTC day of an epoch-milliseconds time."""
    day = epoch_ms // _DAY_MS
    key = _DATE_KEYS.get(day)
    if key is None:
        date = _EPOCH_NAIVE.date() + dt.timedelta(days=day)
        key = _DATE_KEYS[day] = date.year * 10_000 + date.month * 100 + date.day
    return key


def number(value: Any, name: str, maximum: float) -> float | int:
    """Return a number between 0 and ``maximum``, or reject the row."""
    if type(value) is not float and type(value) is not int:
        raise Rejected("bad_number", f"{name} is not a number: {value!r}")
    if value < 0:
        raise Rejected(f"negative_{name}", f"{name} is negative: {value!r}")
    if not value <= maximum:  # also catches NaN
        raise Rejected(f"implausible_{name}", f"{name} is over {maximum}: {value!r}")
    return value


def plain(value: str) -> bool:
    """Tell whether ``value`` goes into COPY text as it is (nothing to escape)."""
    return value.isprintable() and "\\" not in value


def key_text(value: Any) -> str:
    """Return a row key as COPY text, or reject the row."""
    if type(value) is not str or not 0 < len(value) <= MAX_KEY_LENGTH:
        raise Rejected("bad_key", f"the key is not a string of 1 to {MAX_KEY_LENGTH}: {value!r}")
    return value if plain(value) else text(value)


def iso(value: Any, name: str, required: bool = True) -> str:
    """Return a date or time as ISO-8601 COPY text (naive times are UTC), or reject the row."""
    if value is None and not required:
        return NULL
    if type(value) is dt.datetime:
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if type(value) is dt.date:
        return value.isoformat()
    raise Rejected("bad_time", f"{name} is not a date: {value!r}")


def user_line(row: dict[str, Any], users: set[str], dates: set[int]) -> str:
    """Return a dim_user line. A bad weight becomes NULL: rejecting the user would reject all
    their workouts too."""
    weight = row["weight_kg"]
    if type(weight) is not float or not 20 <= weight <= 400:
        weight = None
    if not isinstance(row["username"], str) or not row["username"]:
        raise Rejected("bad_username", f"username is not a name: {row['username']!r}")
    fields = (key_text(row["id"]), text(row["username"]), text(weight))
    times = (iso(row["created_at"], "created_at"), iso(row["updated_at"], "updated_at"))
    return "\t".join(fields + times) + "\n"


def goal_line(row: dict[str, Any], users: set[str], dates: set[int]) -> str:
    """Return a fact_goal_snapshot line, dated the UTC day the goal last changed."""
    if row["user_id"] not in users:
        raise Rejected("unknown_user", f"user {row['user_id']!r} is not in the user database")
    if row["goal_type"] not in GOAL_TYPES:
        raise Rejected("unknown_goal_type", f"goal type {row['goal_type']!r} is unknown")
    if row["workout_type"] is not None and row["workout_type"] not in WORKOUT_METS:
        raise Rejected("unknown_workout_type", f"workout type {row['workout_type']!r} is unknown")
    if row["status"] not in GOAL_STATUSES:
        raise Rejected("bad_status", f"goal status {row['status']!r} is unknown")
    target = number(row["target_value"], "target_value", 1e12)
    if target == 0:
        raise Rejected("bad_target_value", "target_value is 0")
    progress = number(row["current_progress"], "current_progress", 1e12)
    day = date_key(millis(row["updated_at"], "updated_at"))
    dates.add(day)
    fields: tuple[str, ...] = (key_text(row["id"]), str(day), row["user_id"], row["goal_type"])
    fields += (text(row["workout_type"]), repr(target), repr(progress), row["status"])
    fields += (iso(row["created_at"], "created_at"), iso(row["achieved_at"], "achieved_at", False))
    fields += (iso(row["target_date"], "target_date"), iso(row["updated_at"], "updated_at"))
    return "\t".join(fields) + "\n"


def session_line(doc: dict[str, Any], users: set[str], days: set[tuple[str, int, str]]) -> str:
    """Return a fact_workout_session line, adding its (user, day, workout type) to ``days``;
    a session's day is the UTC day it started."""
    session_id = doc["_id"]
    if type(session_id) is not str or not _is_uuid(session_id):
        raise Rejected("bad_key", f"the session id is not a UUID in lowercase: {session_id!r}")
    user_id, workout_type, status = doc["user_id"], doc["workout_type"], doc["status"]
    if user_id not in users:
        raise Rejected("unknown_user", f"user {user_id!r} is not in the user database")
    if workout_type not in WORKOUT_METS:
        raise Rejected("unknown_workout_type", f"workout type {workout_type!r} is unknown")
    start = millis(doc["start_time"], "start_time")
    if status in ("ended", "discarded"):  # only ended ones count in a day (etl.merges)
        ended_ms = millis(doc.get("end_time"), "end_time")
        if ended_ms < start:
            raise Rejected("end_before_start", "the session ends before it starts")
        duration = repr(number(doc.get("duration"), "duration", MAX_WORKOUT_MINUTES))
        calories = repr(number(doc.get("calories_burned"), "calories_burned", MAX_CALORIES))
        end = str(ended_ms)
    elif status == "active":
        end = duration = calories = NULL
    else:
        raise Rejected("bad_status", f"session status {status!r} is unknown")
    day = date_key(start)
    weight = doc.get("weight_kg")
    weight = repr(weight) if type(weight) is float and 0 < weight < 1000 else NULL
    source = doc.get("weight_source")
    source = source if source in WEIGHT_SOURCES else NULL
    updated = millis(doc["updated_at"], "updated_at")
    days.add((user_id, day, workout_type))  # last: only rows that load count
    return (
        f"{session_id}\t{user_id}\t{workout_type}\t{day}\t{status}\t{start}\t{end}\t"
        f"{duration}\t{calories}\t{weight}\t{source}\t{updated}\n"
    )


def group_session_line(doc: dict[str, Any], users: set[str], dates: set[int]) -> str:
    """Return a fact_group_session line: a few well-known fields and the whole document."""
    started = _first_time(doc, "start_time", "started_at", "created_at")
    ended = _first_time(doc, "end_time", "ended_at")
    if started is not None and ended is not None and ended < started:
        raise Rejected("end_before_start", "the group session ends before it starts")
    day = NULL
    if started is not None:
        key = date_key(millis(started, "start_time"))
        dates.add(key)
        day = str(key)
    participants = doc.get("participants")
    count = len(participants) if isinstance(participants, list | dict) else 0
    workout_type = doc.get("workout_type")
    workout_type = workout_type if isinstance(workout_type, str) else None
    fields: tuple[str, ...] = (key_text(doc["_id"]), day, text(workout_type))
    fields += (iso(started, "start", False),)
    fields += (iso(ended, "end", False), str(count), text(raw_json(doc)))
    return "\t".join((*fields, iso(doc["updated_at"], "updated_at"))) + "\n"


def _first_time(doc: dict[str, Any], *names: str) -> dt.datetime | None:
    for name in names:
        if type(doc.get(name)) is dt.datetime:
            return doc[name]
    return None


# A value of an unexpected shape (a list where a name should be, say) fails with TypeError or
# ValueError somewhere in the checks: that rejects the row, as a failed check does.
_PROBLEMS = (Rejected, KeyError, TypeError, ValueError)

LINE_MAKERS: dict[str, Callable[[dict[str, Any], set[str], set[int]], str]] = {
    "users": user_line,
    "goals": goal_line,
    "group_sessions": group_session_line,
}


def transform(
    source: str, rows: Iterable[dict[str, Any]], users: set[str], fresh_after: int | None = None
) -> Transformed:
    """Transform a batch of ``source`` rows; what fails a check becomes a rejection.

    Sessions created after ``fresh_after`` (epoch ms; None: none are) go to ``fresh``.
    """
    if source == "sessions":
        return _sessions(rows, users, fresh_after)
    out = Transformed()
    make, lines, dates = LINE_MAKERS[source], out.lines, out.dates
    for row in rows:
        try:
            lines.append(make(row, users, dates))
        except _PROBLEMS as problem:
            out.rejections.append(rejection_line(source, row, problem))
    return out


def _sessions(rows: Iterable[dict[str, Any]], users: set[str], fresh_after: int | None):
    out = Transformed()
    days: set[tuple[str, int, str]] = set()
    fresh = _first_times_after(fresh_after)
    for doc in rows:
        try:
            line = session_line(doc, users, days)
        except _PROBLEMS as problem:
            out.rejections.append(rejection_line("sessions", doc, problem))
            continue
        created = doc.get("created_at")
        if fresh and type(created) is dt.datetime and created >= fresh[created.tzinfo is not None]:
            out.fresh.append(line)
        else:
            out.lines.append(line)
    out.dates = set(map(itemgetter(1), days))
    out.distinct_days = len(days) == len(out.lines) + len(out.fresh)
    return out


def _first_times_after(epoch_ms: int | None) -> tuple[dt.datetime, dt.datetime] | None:
    """Return the first naive and aware times whose epoch milliseconds exceed ``epoch_ms``
    (comparing times is cheaper than converting each), or None if no time's do."""
    if epoch_ms is None or epoch_ms >= millis(dt.datetime.max, "max"):
        return None
    first = _EPOCH_NAIVE + (epoch_ms + 1) * _MILLISECOND
    return first, first.replace(tzinfo=dt.UTC)


def rejection_line(source: str, row: dict[str, Any], problem: Exception) -> str:
    """Return a rejected_rows line: source, key, reason code, reason, raw row as JSON."""
    if isinstance(problem, KeyError):
        problem = Rejected("missing_field", f"required field {problem} is missing")
    elif not isinstance(problem, Rejected):
        problem = Rejected("malformed", f"{type(problem).__name__}: {problem}")
    key = row.get("_id", row.get("id"))
    fields = (source, text(key if isinstance(key, str) else repr(key)), problem.code)
    return "\t".join((*fields, text(problem.reason), text(raw_json(row)))) + "\n"


def raw_json(row: dict[str, Any]) -> str:
    """Return a row as JSON that PostgreSQL's jsonb accepts, keys sorted (stable across runs)."""
    return json.dumps(_jsonable(row), sort_keys=True, allow_nan=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str):
        return value.replace("\0", "\ufffd")  # jsonb has no room for NUL
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return iso(value, "value")
    return _jsonable(str(value))
