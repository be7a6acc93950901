"""Shapes of the goal requests the gateway turns into sagas.

Only types are checked here, so nothing malformed reaches a gRPC message; what the values must
mean (a known goal type, a date not in the past, …) is the user service's rule, and its refusal
comes back to the client unchanged.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Text = Annotated[str, Field(max_length=64)]


class NewGoal(_Strict):
    goal_type: Text
    target_value: float
    target_date: Text
    workout_type: Text | None = None


class GoalChange(_Strict):
    target_value: float | None = None
    target_date: Text | None = None
