"""Request bodies of the activity service, validated with pydantic (unknown fields refused)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fitness.workouts import WORKOUT_TYPES

MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_BACKDATE = dt.timedelta(days=7)
MAX_DURATION = dt.timedelta(hours=24)


def _workout_type(value: str) -> str:
    if value not in WORKOUT_TYPES:
        raise ValueError(f"Unknown workout type; accepted: {', '.join(WORKOUT_TYPES)}.")
    return value


def parse_timestamp(value: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp (UTC if it has no offset) that is not in the future."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("Must be an ISO-8601 timestamp, e.g. 2026-01-31T18:30:00Z.") from None
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment
    if moment > dt.datetime.now(dt.UTC) + MAX_CLOCK_SKEW:
        raise ValueError("Must not be in the future.")
    return moment.astimezone(dt.UTC)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Timestamp = Annotated[str, Field(max_length=40), AfterValidator(parse_timestamp)]


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
