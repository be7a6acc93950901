"""A goal as the API shows it (``GoalView``), and as the gRPC contract carries it, both ways.

The user service writes the view from its table; the saga in the gateway gets it back from the
user service over gRPC and answers the client with it. One definition of the shape and its two
conversions keeps those answers identical.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from fitness.v1 import user_pb2

MAX_WORKOUTS_PER_REPORT = 100
"""Workouts one ``RecordWorkouts`` call may carry (user.proto): the user service refuses more,
and the activity service sends its reports in calls of at most this many."""


class GoalView(TypedDict):
    """A goal in the API's (seed) shape."""

    goal_id: str
    user_id: str
    goal_type: str
    workout_type: str | None
    target_value: float
    target_date: str  # YYYY-MM-DD
    current_progress: float
    achieved: bool
    achieved_at: str | None  # ISO-8601
    status: str  # fitness.workouts.GOAL_STATUSES
    created_at: str  # ISO-8601


def goal_message(view: Mapping[str, Any]) -> user_pb2.GoalResponse:
    """Return a goal view (a ``GoalView``) as its protobuf message (absent values as empty
    strings)."""
    return user_pb2.GoalResponse(
        goal_id=view["goal_id"],
        user_id=view["user_id"],
        goal_type=view["goal_type"],
        target_value=view["target_value"],
        target_date=view["target_date"],
        current_progress=view["current_progress"],
        achieved=view["achieved"],
        achieved_at=view["achieved_at"] or "",
        workout_type=view["workout_type"] or "",
        status=view["status"],
        created_at=view.get("created_at", ""),
    )


def goal_view(message: user_pb2.GoalResponse) -> GoalView:
    """Return a goal message as the API's view (empty strings back to None)."""
    return {
        "goal_id": message.goal_id,
        "user_id": message.user_id,
        "goal_type": message.goal_type,
        "workout_type": message.workout_type or None,
        "target_value": message.target_value,
        "target_date": message.target_date,
        "current_progress": message.current_progress,
        "achieved": message.achieved,
        "achieved_at": message.achieved_at or None,
        "status": message.status,
        "created_at": message.created_at,
    }
