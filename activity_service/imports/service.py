"""Import a file's activities as finished workouts, once each, however often it comes.

Each activity becomes a workout through ``WorkoutService.store_imported``, the same path a
logged workout takes, so it counts in statistics and goals (``goal_achieved`` included) and the
nightly ETL like any other. Duplicates are known two ways:

- by the activity's fingerprint (``formats.Activity.fingerprint``): the same file again, even
  after the sport mapping changed;
- by its id, derived from user, workout type and start: the same activity from another format.

The fingerprint is recorded after the workout is stored, so a crash in between leaves no
fingerprint without its workout; the import then finds the workout by its id instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import IO, Any

from activity_service.exceptions import FileTooLarge, NothingImported
from activity_service.imports.archives import ZIP_MAGIC, is_archive
from activity_service.imports.formats import (
    MAX_LISTED,
    Activity,
    Found,
    Rejection,
    rejection_views,
)
from activity_service.imports.jobs import REST_SECONDS, ImportJobs
from activity_service.imports.sports import workout_type_of
from activity_service.imports.upload import display_name, parsing_pool, read_upload_in
from activity_service.schemas import LogWorkoutBody
from activity_service.service import FinishedWorkout, WorkoutService, logged_workout
from activity_service.store import ActivityStore
from fitness import mongo
from fitness.errors import ValidationFailed
from fitness.imports import MAX_FILE_BYTES
from fitness.web import validate

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of a file's activities: workout ids stored now or before, and rejections."""

    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class ImportService:
    """Turn uploaded files into workouts."""

    def __init__(
        self,
        store: ActivityStore,
        workouts: WorkoutService,
        job_processes: int = 0,
        job_rest_seconds: float = REST_SECONDS,
    ):
        self.store = store
        self.workouts = workouts
        self.parsing = parsing_pool()
        self.jobs = ImportJobs(store, self, job_processes, job_rest_seconds)

    def import_file(
        self, user_id: str, filename: str, upload: IO[bytes], workout_type: str | None
    ) -> tuple[dict[str, Any], int]:
        """Import the file's workouts; return the summary and its HTTP status.

        201 when something was imported, 200 when everything was there already, and
        ``NothingImported`` (400) when nothing in it could be: every activity was rejected.
        ``workout_type``: for activities whose file names no sport we know. An archive is not
        read here: it becomes a job (``jobs``), answered 202. ``upload``: a seekable file (an
        archive is read from it in pieces; a single file of at most ``MAX_FILE_BYTES`` whole).
        """
        if is_archive(filename, upload.read(len(ZIP_MAGIC))):
            upload.seek(0)
            return self.jobs.submit(user_id, filename, upload)
        upload.seek(0)
        data = upload.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FileTooLarge(display_name(filename), MAX_FILE_BYTES)
        outcome = self.store_found(
            user_id, read_upload_in(self.parsing, filename, data), workout_type
        )
        if not outcome.imported and not outcome.duplicates:
            raise NothingImported({r.where: r.reason for r in outcome.rejected[:MAX_LISTED]})
        log.info(
            "file imported: %d new, %d already there, %d rejected",
            len(outcome.imported),
            len(outcome.duplicates),
            len(outcome.rejected),
            extra={"user.id": user_id},
        )
        summary = {
            "imported": len(outcome.imported),
            "duplicates": len(outcome.duplicates),
            "rejected": len(outcome.rejected),
            "rejections": rejection_views(outcome.rejected),
            "workout_ids": outcome.imported,
        }
        return summary, 201 if outcome.imported else 200

    def store_found(self, user_id: str, found: list[Found], workout_type: str | None) -> Outcome:
        """Store what a file held as workouts, once each; return what became of it."""
        outcome = Outcome()
        activities: list[Activity] = []
        for item in found:
            if isinstance(item, Rejection):
                outcome.rejected.append(item)
            else:
                activities.append(item)
        seen = self._seen(user_id, activities)
        outcome.duplicates += [seen[a.fingerprint] for a in activities if a.fingerprint in seen]
        fresh: list[tuple[Activity, FinishedWorkout]] = []
        for activity in activities:
            if activity.fingerprint in seen:
                continue
            try:
                fresh.append((activity, self._workout(activity, workout_type)))
            except _Refused as exc:
                outcome.rejected.append(Rejection(activity.where, exc.reason))
        stored = self.workouts.store_imported_many(user_id, [w for _, w in fresh])
        outcome.imported += [session_id for session_id, now in stored if now]
        outcome.duplicates += [session_id for session_id, now in stored if not now]
        self._remember(user_id, [a for a, _ in fresh], [session_id for session_id, _ in stored])
        return outcome

    def _seen(self, user_id: str, activities: list[Activity]) -> dict[str, str]:
        """Return {fingerprint: workout id} of the activities imported before."""
        keys = [f"{user_id}:{a.fingerprint}" for a in activities]
        found = mongo.find_each(self.store.imported_activities, keys)
        return {doc["_id"].partition(":")[2]: doc["session_id"] for doc in found}

    def _remember(self, user_id: str, activities: list[Activity], session_ids: list[str]) -> None:
        """Record the fingerprints of stored activities (after them: see the module docstring)."""
        docs = {
            key: {"_id": key, "user_id": user_id, "session_id": session_id}
            for activity, session_id in zip(activities, session_ids, strict=True)
            if (key := f"{user_id}:{activity.fingerprint}")
        }
        # One taken already: the same file imported twice at once; one of them recorded it.
        mongo.insert_new(self.store.imported_activities, list(docs.values()))

    def _workout(self, activity: Activity, default_type: str | None) -> FinishedWorkout:
        """Return the activity as a workout, held to the rules of a logged one.

        A reading out of range (a heart-rate glitch, a GPS jump) is dropped, not the workout.
        """
        workout_type = workout_type_of(*activity.sports) or default_type
        if workout_type is None:
            named = ", ".join(repr(s) for s in activity.sports if s) or "no sport"
            raise _Refused(f"the file names {named}, which maps to no workout type; send one")
        body: dict[str, Any] = {
            "workout_type": workout_type,
            "start_time": activity.start_time.isoformat(),
            "end_time": activity.end_time.isoformat(),
            "sets": list(activity.sets),
            **{name: value for name, value in _readings(activity).items() if value is not None},
        }
        try:
            try:
                valid = validate(LogWorkoutBody, body)
            except ValidationFailed as exc:
                if not set(exc.fields) <= set(_READINGS):
                    raise
                valid = validate(
                    LogWorkoutBody, {k: v for k, v in body.items() if k not in exc.fields}
                )
            return logged_workout(valid, self.workouts.min_minutes, source="import")
        except ValidationFailed as exc:
            details = "; ".join(f"{field}: {problem}" for field, problem in exc.fields.items())
            raise _Refused(f"{exc.message} ({details})" if details else exc.message) from None


_READINGS = ("distance_km", "elevation_gain_m", "average_heart_rate", "calories_burned")


def _readings(activity: Activity) -> dict[str, float | None]:
    """Return what a device measured, rounded as the API shows it."""
    return {
        "distance_km": _rounded(activity.distance_km, 3),
        "elevation_gain_m": _rounded(activity.elevation_gain_m, 1),
        "average_heart_rate": _rounded(activity.average_heart_rate, 0),
        "calories_burned": _rounded(activity.calories_burned, 1),
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class _Refused(Exception):
    """An activity read well that can't become a workout (its sport, its length)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
