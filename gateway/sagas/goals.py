"""The goal sagas: create, change and cancel a goal in the user service, then tell the
activity service (which derives workout suggestions from goals), undoing in reverse on failure.

Every call carries (saga id, step name); both participants apply each pair once. A
compensation names the step it undoes (``supersedes``), so a late delivery of that step, after
the compensation, changes nothing. The coordinator chooses the new goal's id up front, so a
creation whose answer was lost can still be undone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fitness.goals import goal_view
from fitness.rpc import ServiceClient
from fitness.v1 import activity_pb2, user_pb2
from gateway.sagas.log import Saga


@dataclass(frozen=True)
class Participants:
    """gRPC clients of the services that take part in goal sagas."""

    users: ServiceClient
    activity: ServiceClient


Action = Callable[[Saga, Participants], dict[str, Any] | None]


@dataclass(frozen=True)
class Step:
    """One step: what it does (returns data to remember) and how to undo it."""

    name: str
    action: Action
    compensation: Callable[[Saga, Participants], None] | None = None


def new_create_saga(user_id: str, body: dict[str, Any], correlation_id: str) -> Saga:
    data = {"goal_id": str(uuid.uuid4()), "body": body}
    return Saga("create_goal", user_id, data, correlation_id=correlation_id)


def new_change_saga(user_id: str, goal_id: str, change: dict[str, Any], correlation_id: str):
    data = {"goal_id": goal_id, "change": change}
    return Saga("change_goal", user_id, data, correlation_id=correlation_id)


def new_cancel_saga(user_id: str, goal_id: str, correlation_id: str) -> Saga:
    return Saga("cancel_goal", user_id, {"goal_id": goal_id}, correlation_id=correlation_id)


def _ref(saga: Saga, step: str, undoes: str = "") -> user_pb2.StepRef:
    return user_pb2.StepRef(saga_id=saga.id, step=step, supersedes=[undoes] if undoes else [])


# --- steps in the user service -------------------------------------------------------------


def _create_goal(saga: Saga, services: Participants) -> dict[str, Any]:
    body = saga.data["body"]
    request = user_pb2.CreateGoalRequest(
        user_id=saga.user_id,
        goal_id=saga.data["goal_id"],
        goal_type=body["goal_type"],
        target_value=body["target_value"],
        target_date=body["target_date"],
        workout_type=body.get("workout_type") or "",
        step=_ref(saga, "create-goal"),
    )
    return {"goal": goal_view(services.users.call("CreateGoal", request))}


def _delete_goal(saga: Saga, services: Participants) -> None:
    request = user_pb2.GoalRequest(
        user_id=saga.user_id,
        goal_id=saga.data["goal_id"],
        step=_ref(saga, "undo:create-goal", undoes="create-goal"),
    )
    services.users.call("DeleteGoal", request)


def _read_goal(saga: Saga, services: Participants) -> dict[str, Any]:
    request = user_pb2.GoalRequest(user_id=saga.user_id, goal_id=saga.data["goal_id"])
    return {"previous": goal_view(services.users.call("GetUserGoal", request))}


def _change_goal(saga: Saga, services: Participants) -> dict[str, Any]:
    change = saga.data["change"]
    request = user_pb2.UpdateGoalRequest(
        user_id=saga.user_id,
        goal_id=saga.data["goal_id"],
        target_value=change.get("target_value") or 0.0,
        target_date=change.get("target_date") or "",
        step=_ref(saga, "change-goal"),
    )
    return {"goal": goal_view(services.users.call("UpdateGoal", request))}


def _cancel_goal(saga: Saga, services: Participants) -> dict[str, Any]:
    request = user_pb2.GoalRequest(
        user_id=saga.user_id, goal_id=saga.data["goal_id"], step=_ref(saga, "cancel-goal")
    )
    return {"goal": goal_view(services.users.call("CancelGoal", request))}


def _restore_goal(undone: str) -> Callable[[Saga, Participants], None]:
    def restore(saga: Saga, services: Participants) -> None:
        previous = saga.data["previous"]
        request = user_pb2.RestoreGoalRequest(
            user_id=saga.user_id,
            goal_id=saga.data["goal_id"],
            target_value=previous["target_value"],
            target_date=previous["target_date"],
            status=previous["status"],
            step=_ref(saga, f"undo:{undone}", undoes=undone),
        )
        services.users.call("RestoreGoal", request)

    return restore


# --- steps in the activity service ---------------------------------------------------------


def _goal_state(saga: Saga, goal: dict[str, Any], status: str, step: str, undoes: str = ""):
    return activity_pb2.GoalState(
        saga_id=saga.id,
        step=step,
        goal_id=goal["goal_id"],
        user_id=saga.user_id,
        goal_type=goal["goal_type"],
        workout_type=goal.get("workout_type") or "",
        target_value=goal["target_value"],
        target_date=goal["target_date"],
        status=status,
        created_at=goal["created_at"],
        supersedes=[undoes] if undoes else [],
    )


def _register_goal(saga: Saga, services: Participants) -> None:
    goal = saga.data["goal"]
    services.activity.call("ApplyGoal", _goal_state(saga, goal, goal["status"], "register-goal"))


def _unregister_goal(saga: Saga, services: Participants) -> None:
    goal = saga.data.get("goal")
    if goal is None:  # the user service never answered: the activity service never heard of it
        return
    state = _goal_state(saga, goal, "deleted", "undo:register-goal", undoes="register-goal")
    services.activity.call("ApplyGoal", state)


def _register_previous(saga: Saga, services: Participants) -> None:
    previous = saga.data["previous"]
    state = _goal_state(
        saga, previous, previous["status"], "undo:register-goal", undoes="register-goal"
    )
    services.activity.call("ApplyGoal", state)


SAGAS: dict[str, list[Step]] = {
    "create_goal": [
        Step("create-goal", _create_goal, _delete_goal),
        Step("register-goal", _register_goal, _unregister_goal),
    ],
    "change_goal": [
        Step("read-goal", _read_goal),
        Step("change-goal", _change_goal, _restore_goal("change-goal")),
        Step("register-goal", _register_goal, _register_previous),
    ],
    "cancel_goal": [
        Step("read-goal", _read_goal),
        Step("cancel-goal", _cancel_goal, _restore_goal("cancel-goal")),
        Step("register-goal", _register_goal, _register_previous),
    ],
}
