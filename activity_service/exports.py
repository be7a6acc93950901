"""A user's whole data as one zip: account, goals, workouts (JSON and CSV) and sets.

``workouts.csv`` is in the import layout (``imports.formats.WORKOUT_COLUMNS`` first), so the
finished workouts of an export import into another account with the same statistics. Text that
a spreadsheet would run as a formula (a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or
a carriage return: OWASP's "CSV Injection") is written with a leading ``'``.

One archive per user per ``EXPORT_INTERVAL``: building one reads everything the user has, so
it is not a thing to call in a loop. The claim is a conditional write in the store, so it holds
across replicas; an export that fails gives its claim back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from typing import Any

from pymongo.errors import DuplicateKeyError

from activity_service.service import UserDirectory, session_view, sessions_of
from activity_service.store import ActivityStore
from fitness import mongo
from fitness.clock import as_utc, utcnow
from fitness.errors import DomainError

EXPORT_INTERVAL = dt.timedelta(hours=1)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

WORKOUT_CSV_COLUMNS = (
    "date", "start_time", "duration", "type", "distance", "calories",  # the import layout
    "end_time", "status", "source", "elevation_gain_m", "average_heart_rate", "session_id",
)  # fmt: skip
SET_CSV_COLUMNS = (
    "date", "workout_type", "exercise", "muscle_group", "set_number", "reps", "weight",
    "session_id",
)  # fmt: skip

README = """Your Fitness Goal Tracker data, exported {at}.

account.json   your account (no password: only its hash is kept, and it is not exported)
goals.json     your goals with their progress
workouts.json  every workout session, as the API shows it (durations in minutes)
workouts.csv   finished workouts, one a row: date and start_time in UTC, duration in minutes,
               distance in km, calories in kcal. Import it into an account
               (POST /users/{{id}}/imports) to bring these workouts there.
sets.csv       the sets of strength workouts, one a row (weight in kg)
"""


class TooManyExports(DomainError):
    """One export an hour per user (``Retry-After``)."""

    http_status = 429
    code = "too_many_exports"

    def __init__(self, retry_after: int):
        super().__init__(
            f"One export an hour: the next one is possible in {retry_after}s.",
        )
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ExportService:
    """Build users' export archives, one an hour each."""

    def __init__(self, store: ActivityStore, users: UserDirectory):
        self.store = store
        self.users = users

    def export(self, user_id: str) -> bytes:
        """Return the user's archive; raise ``TooManyExports`` within an hour of the last."""
        claimed_at = self._claim(user_id)
        try:
            return self._archive(user_id, claimed_at)
        except Exception:
            self.store.exports.delete_one({"_id": user_id, "at": claimed_at})
            raise

    def _claim(self, user_id: str) -> dt.datetime:
        now = utcnow()
        try:
            self.store.exports.insert_one({"_id": user_id, "at": now})
            return now
        except DuplicateKeyError:
            pass
        taken = mongo.update(
            self.store.exports.update_one,
            {"_id": user_id, "at": {"$lte": now - EXPORT_INTERVAL}},
            {"$set": {"at": now}},
        )
        if taken.modified_count:
            return now
        last = (self.store.exports.find_one({"_id": user_id}) or {}).get("at", now)
        wait = (as_utc(last) + EXPORT_INTERVAL - now).total_seconds()
        raise TooManyExports(max(1, int(wait) + 1))

    def _archive(self, user_id: str, at: dt.datetime) -> bytes:
        workouts = [
            session_view(doc)
            for doc in self.store.sessions.find(sessions_of(user_id), sort=[("start_time", 1)])
        ]
        files = {
            "README.txt": README.format(at=at.isoformat()),
            "account.json": _json(self.users.account(user_id)),
            "goals.json": _json(self.users.goals(user_id)),
            "workouts.json": _json(workouts),
            "workouts.csv": _csv(WORKOUT_CSV_COLUMNS, map(_workout_row, _finished(workouts))),
            "sets.csv": _csv(SET_CSV_COLUMNS, (row for w in workouts for row in _set_rows(w))),
        }
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for name, text in files.items():
                zipped.writestr(name, text)
        return archive.getvalue()


def _finished(workouts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in workouts if w["status"] != "active"]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _csv(columns: tuple[str, ...], rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _cell(value: Any) -> str:
    """Return ``value`` as CSV text a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _workout_row(workout: dict[str, Any]) -> tuple:
    start = dt.datetime.fromisoformat(workout["start_time"])
    return (
        start.date().isoformat(),
        start.time().isoformat(timespec="milliseconds"),
        workout["duration"],
        workout["workout_type"],
        workout["distance_km"],
        workout["calories_burned"],
        workout["end_time"],
        workout["status"],
        workout["source"],
        workout["elevation_gain_m"],
        workout["average_heart_rate"],
        workout["session_id"],
    )


def _set_rows(workout: dict[str, Any]):
    day = workout["start_time"][:10]
    for number, one in enumerate(workout["sets"], start=1):
        yield (
            day,
            workout["workout_type"],
            one["exercise"],
            one.get("muscle_group"),
            number,
            one["reps"],
            one.get("weight_kg"),
            workout["session_id"],
        )
