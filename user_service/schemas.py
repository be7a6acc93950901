"""Request bodies of the user service, validated with pydantic (unknown fields are refused)."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fitness.workouts import GOAL_STATUSES, GOAL_TYPES, WORKOUT_TYPES

_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def _username(value: str) -> str:
    if not _USERNAME.match(value):
        raise ValueError("3 to 32 letters, digits, '.', '_' or '-'.")
    return value


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("Not a valid email address.")
    return value


def _goal_type(value: str) -> str:
    if value not in GOAL_TYPES:
        raise ValueError(f"Unknown goal type; accepted: {', '.join(GOAL_TYPES)}.")
    return value


def _workout_type(value: str | None) -> str | None:
    if value is not None and value not in WORKOUT_TYPES:
        raise ValueError(f"Unknown workout type; accepted: {', '.join(WORKOUT_TYPES)}.")
    return value


def _any_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("Must be an ISO-8601 date, YYYY-MM-DD.") from None


def parse_future_date(value: str) -> dt.date:
    """Parse an ISO-8601 date (YYYY-MM-DD) that is today or later (UTC)."""
    day = _any_date(value)
    if day < dt.datetime.now(dt.UTC).date():
        raise ValueError("Must not be in the past.")
    return day


Weight = Annotated[float, Field(strict=True, ge=20, le=400, allow_inf_nan=False)]
TargetValue = Annotated[float, Field(strict=True, gt=0, le=10_000_000, allow_inf_nan=False)]
if TYPE_CHECKING:  # what the fields hold once validated: the strings sent, parsed
    TargetDate = dt.date
    AnyDate = dt.date
    GoalStatus = str
else:
    TargetDate = Annotated[
        str, Field(strict=True, max_length=32), AfterValidator(parse_future_date)
    ]
    AnyDate = Annotated[str, Field(max_length=32), AfterValidator(_any_date)]
    GoalStatus = Literal[GOAL_STATUSES]
OptionalWorkoutType = Annotated[str | None, AfterValidator(_workout_type)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterBody(Strict):
    username: Annotated[str, AfterValidator(_username)]
    email: Annotated[str, Field(max_length=254), AfterValidator(_email)]
    password: Annotated[str, Field(min_length=8, max_length=128)]
    weight_kg: Weight | None = None


class LoginBody(Strict):
    email: Annotated[str, Field(max_length=254), AfterValidator(str.lower)]
    password: Annotated[str, Field(max_length=128)]


class ProfileBody(Strict):
    weight_kg: Weight | None = None


class GoalBody(Strict):
    goal_type: Annotated[str, AfterValidator(_goal_type)]
    target_value: TargetValue
    target_date: TargetDate
    workout_type: OptionalWorkoutType = None


class GoalChangeBody(Strict):
    target_value: TargetValue | None = None
    target_date: TargetDate | None = None


class RestoredGoalBody(Strict):
    """An earlier state of a goal; its date may now be in the past, as it was valid then."""

    target_value: TargetValue
    target_date: AnyDate
    status: GoalStatus
