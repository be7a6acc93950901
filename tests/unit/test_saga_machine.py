"""The goal saga's state machine, in process, with the two services played by fakes.

The fakes keep to the gRPC contract (the messages the real servicers answer) and record what
was asked of them, so each test reads as: these answers, therefore these calls and this state.
The sagas against the real services are in tests/sagas/test_sagas.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from fitness.errors import Unavailable, ValidationFailed
from fitness.v1 import activity_pb2, user_pb2
from gateway.sagas.coordinator import Coordinator, CoordinatorSettings, LeaseLost
from gateway.sagas.goals import Participants, new_cancel_saga, new_create_saga
from gateway.sagas.log import Saga

GOAL = {"goal_type": "workout_count", "target_value": 3.0, "target_date": "2099-01-01"}
QUICK = CoordinatorSettings(step_deadline_seconds=0.2, compensation_deadline_seconds=0.2)


class FakeLog:
    """The saga log: every checkpoint is kept; ``lease`` says whether we still hold the saga."""

    def __init__(self, lease: bool = True):
        self.lease = lease
        self.checkpoints: list[tuple[str, str, str]] = []

    def checkpoint(self, saga: Saga, owner: str) -> bool:
        entry = saga.history[-1]
        self.checkpoints.append((saga.state, entry["step"], entry["event"]))
        return self.lease

    def release(self, saga_id: str, owner: str) -> None:
        pass


class FakeService:
    """One service: answers each method with ``answers[method](request)`` or raises what
    ``failures`` holds for it; records every call."""

    def __init__(self, answers: dict[str, Any], failures: dict[str, Exception] | None = None):
        self.answers = answers
        self.failures = failures or {}
        self.calls: list[str] = []

    def call(self, method: str, request, timeout: float | None = None):
        self.calls.append(method)
        if method in self.failures:
            raise self.failures[method]
        return self.answers[method](request)


def _goal(request, status: str = "active") -> user_pb2.GoalResponse:
    return user_pb2.GoalResponse(
        goal_id=request.goal_id,
        user_id=request.user_id,
        goal_type=GOAL["goal_type"],
        target_value=GOAL["target_value"],
        target_date=GOAL["target_date"],
        status=status,
        created_at="2026-12-07T10:00:00+00:00",
    )


USER_ANSWERS = {
    "CreateGoal": _goal,
    "DeleteGoal": _goal,
    "GetUserGoal": _goal,
    "CancelGoal": lambda request: _goal(request, "cancelled"),
    "RestoreGoal": _goal,
}
ACTIVITY_ANSWERS = {"ApplyGoal": lambda request: activity_pb2.GoalState()}


def _drive(saga: Saga, users: FakeService, activity: FakeService, log: FakeLog | None = None):
    coordinator = Coordinator(log or FakeLog(), Participants(users, activity), QUICK)  # type: ignore[arg-type]
    coordinator.drive(saga)
    return saga


def test_a_goal_is_created_in_the_user_service_then_registered_in_the_activity_service():
    users, activity = FakeService(USER_ANSWERS), FakeService(ACTIVITY_ANSWERS)
    saga = _drive(new_create_saga("u-1", GOAL, "corr-1"), users, activity)
    assert saga.state == "completed"
    assert (users.calls, activity.calls) == (["CreateGoal"], ["ApplyGoal"])
    assert saga.data["goal"]["goal_id"] == saga.data["goal_id"]


def test_a_refusal_by_the_activity_service_undoes_the_goal_in_the_user_service():
    refused = ValidationFailed("bad goal", {"target_date": "no"})
    users = FakeService(USER_ANSWERS)
    activity = FakeService(ACTIVITY_ANSWERS, {"ApplyGoal": refused})
    saga = _drive(new_create_saga("u-1", GOAL, ""), users, activity)
    assert saga.state == "compensated"
    assert users.calls == ["CreateGoal", "DeleteGoal"]
    assert activity.calls == ["ApplyGoal"]  # refused: the step did not happen, nothing to undo
    assert saga.error is not None and saga.error["code"] == "validation_failed"


def test_a_refused_first_step_fails_the_saga_with_nothing_to_undo():
    users = FakeService(USER_ANSWERS, {"CreateGoal": ValidationFailed("no", {"goal_type": "x"})})
    activity = FakeService(ACTIVITY_ANSWERS)
    saga = _drive(new_create_saga("u-1", GOAL, ""), users, activity)
    assert saga.state == "failed"
    assert (users.calls, activity.calls) == (["CreateGoal"], [])


def test_a_step_that_timed_out_is_undone_too_once_its_service_answers():
    """A deadline may fire after the service acted: its outcome is unknown, so it is undone."""
    activity = FakeService(ACTIVITY_ANSWERS, {"ApplyGoal": Unavailable("deadline exceeded")})
    users = FakeService(USER_ANSWERS)
    log = FakeLog()
    saga = _drive(new_create_saga("u-1", GOAL, ""), users, activity, log)
    # The activity service stays down: its undo waits, the user service's goal is deleted,
    # and the saga stays open for recovery rather than claiming it is undone.
    assert saga.state == "compensating"
    assert "DeleteGoal" in users.calls
    assert ("compensating", "register-goal", "compensation-pending") in log.checkpoints

    activity.failures.clear()  # back: recovery drives the saga again and it settles
    _drive(saga, users, activity, log)
    assert saga.state == "compensated"
    assert activity.calls[-1] == "ApplyGoal"


def test_cancelling_reads_the_goal_first_so_that_it_can_be_restored():
    users = FakeService(USER_ANSWERS)
    activity = FakeService(ACTIVITY_ANSWERS, {"ApplyGoal": ValidationFailed("no", {})})
    saga = _drive(new_cancel_saga("u-1", "g-1", ""), users, activity)
    assert saga.state == "compensated"
    assert users.calls == ["GetUserGoal", "CancelGoal", "RestoreGoal"]
    assert saga.data["previous"]["status"] == "active"


def test_a_coordinator_that_lost_its_lease_stops_driving():
    users, activity = FakeService(USER_ANSWERS), FakeService(ACTIVITY_ANSWERS)
    with pytest.raises(LeaseLost):
        _drive(new_create_saga("u-1", GOAL, ""), users, activity, FakeLog(lease=False))
    assert users.calls == []  # the write-ahead checkpoint failed before the first step
