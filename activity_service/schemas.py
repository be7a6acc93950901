"""Request bodies of the activity service, validated with pydantic (unknown fields refused)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fitness.workouts import GOAL_COPY_STATUSES, GOAL_TYPES, MAX_WORKOUT_MINUTES, WORKOUT_TYPES

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_BACKDATE = dt.timedelta(days=7)
MAX_DURATION = dt.timedelta(minutes=MAX_WORKOUT_MINUTES)


def _workout_type(value: str) -> str:
    if value not in WORKOUT_TYPES:
        raise ValueError(f"Unknown workout type; accepted: {', '.join(WORKOUT_TYPES)}.")
    return value


def _optional_workout_type(value: str | None) -> str | None:
    return None if value is None else _workout_type(value)


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp (UTC if it has no offset) at most ``MAX_CLOCK_SKEW`` in the
    future (a client's clock may run a little ahead)."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("Must be an ISO-8601 timestamp, e.g. 2026-01-31T18:30:00Z.") from None
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
    if moment > dt.datetime.now(dt.UTC) + MAX_CLOCK_SKEW:
        skew = int(MAX_CLOCK_SKEW.total_seconds() // 60)
        raise ValueError(f"Must not be more than {skew} minutes in the future.")
    return moment.astimezone(dt.UTC)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


if TYPE_CHECKING:  # what the fields hold once validated: the strings sent, parsed
    Timestamp = dt.datetime
    GoalType = str
    GoalCopyStatus = str
else:
    Timestamp = Annotated[str, Field(max_length=40), AfterValidator(parse_timestamp)]
    GoalType = Literal[GOAL_TYPES]
    GoalCopyStatus = Literal[GOAL_COPY_STATUSES]


def _recent(moment: dt.datetime) -> dt.datetime:
    if moment < dt.datetime.now(dt.UTC) - MAX_BACKDATE:
        raise ValueError(f"Must be within the last {MAX_BACKDATE.days} days.")
    return moment


class StartBody(Strict):
    user_id: Annotated[str, Field(min_length=1, max_length=64)]
    workout_type: Annotated[str, AfterValidator(_workout_type)]
    # Set to log a workout that began earlier (e.g. started before opening the app).
    start_time: Annotated[Timestamp, AfterValidator(_recent)] | None = None


class EndBody(Strict):
    end_time: Timestamp | None = None


EARLIEST_WORKOUT = dt.datetime(1990, 1, 1, tzinfo=dt.UTC)
"""Older than any file a watch or an app could have recorded: a typo, not history."""
MAX_SETS = 500


def _not_before_earliest(moment: dt.datetime) -> dt.datetime:
    if moment < EARLIEST_WORKOUT:
        raise ValueError(f"Must be on or after {EARLIEST_WORKOUT.date().isoformat()}.")
    return moment


def _exercise(value: str) -> str:
    value = value.strip()
    if not value or not value.isprintable():
        raise ValueError("Must be printable text.")
    return value


Amount = Annotated[float, Field(allow_inf_nan=False)]


class WorkoutSet(Strict):
    """One set of strength work."""

    exercise: Annotated[
        str, Field(max_length=64, description="e.g. Squat."), AfterValidator(_exercise)
    ]
    muscle_group: (
        Annotated[str, Field(max_length=32, description="e.g. Legs."), AfterValidator(_exercise)]
        | None
    ) = None
    reps: Annotated[int, Field(ge=1, le=1000, description="Repetitions.")]
    weight_kg: Annotated[Amount, Field(ge=0, le=1000, description="Load in kg.")] | None = None


class LogWorkoutBody(Strict):
    """A finished workout, logged after the fact for any past date (``duration`` in minutes)."""

    workout_type: Annotated[str, AfterValidator(_workout_type)]
    start_time: Annotated[Timestamp, AfterValidator(_not_before_earliest)]
    end_time: Timestamp | None = None
    duration: Annotated[Amount, Field(gt=0, le=MAX_DURATION.total_seconds() / 60)] | None = None
    distance_km: Annotated[Amount, Field(gt=0, le=1000)] | None = None
    elevation_gain_m: Annotated[Amount, Field(ge=0, le=20_000)] | None = None
    average_heart_rate: Annotated[Amount, Field(ge=20, le=250)] | None = None
    calories_burned: Annotated[Amount, Field(ge=0, le=20_000)] | None = None
    sets: Annotated[list[WorkoutSet], Field(max_length=MAX_SETS)] = []


def _iso_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("Must be an ISO-8601 date, YYYY-MM-DD.") from None


def _iso_time(value: str) -> str:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("Must be an ISO-8601 timestamp.") from None
    return value


class GoalStateBody(Strict):
    """A goal's state as a saga step sets it (``ApplyGoal``)."""

    goal_id: Annotated[str, Field(min_length=1, max_length=64)]
    user_id: Annotated[str, Field(min_length=1, max_length=64)]
    goal_type: GoalType
    workout_type: Annotated[str | None, AfterValidator(_optional_workout_type)] = None
    target_value: Annotated[float, Field(gt=0, le=10_000_000, allow_inf_nan=False)]
    target_date: Annotated[str, Field(max_length=32), AfterValidator(_iso_date)]
    status: GoalCopyStatus
    created_at: Annotated[str, Field(max_length=40), AfterValidator(_iso_time)]
