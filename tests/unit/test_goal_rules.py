"""The goal rules of the user service, in process, over a real SQLite file migrated as in
production: what counts towards a goal, when it is achieved, and what a cancelled goal does."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from fitness.web import validate
from user_service import schemas
from user_service.db import Database
from user_service.exceptions import GoalNotActive
from user_service.migrations import upgrade
from user_service.passwords import Passwords
from user_service.service import AccountService, FinishedWorkout, GoalService

SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Database:
    url = f"sqlite:///{tmp_path_factory.mktemp('goals') / 'users.db'}"
    upgrade(url)
    return Database(url)


@pytest.fixture
def user_id(database) -> str:
    accounts = AccountService(database, "k" * 40, 3600, Passwords())
    name = "u" + uuid.uuid4().hex[:10]
    body = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
    return accounts.register(validate(schemas.RegisterBody, body))["user_id"]


@pytest.fixture
def goals(database) -> GoalService:
    return GoalService(database)


def _goal(goals: GoalService, user_id: str, **fields) -> dict:
    body = {"goal_type": "workout_count", "target_value": 2, "target_date": SOON, **fields}
    return goals.create(user_id, validate(schemas.GoalBody, body))


def _workout(user_id: str, kind: str = "running", minutes: float = 30, **fields) -> FinishedWorkout:
    values = {
        "session_id": str(uuid.uuid4()),
        "user_id": user_id,
        "workout_type": kind,
        "duration_minutes": minutes,
        "calories_burned": 250.0,
        "ended_at": dt.datetime.now(dt.UTC),
        **fields,
    }
    return FinishedWorkout(**values)


def test_a_goal_is_achieved_by_the_workout_that_reaches_its_target(goals, user_id):
    goal = _goal(goals, user_id)
    counted, achieved = goals.record_workout(_workout(user_id))
    assert counted and achieved == []
    counted, achieved = goals.record_workout(_workout(user_id))
    assert [g["goal_id"] for g in achieved] == [goal["goal_id"]]
    now = goals.get(user_id, goal["goal_id"])
    assert (now["current_progress"], now["achieved"]) == (2, True)


def test_a_workout_counts_once_however_often_it_is_reported(goals, user_id):
    goal = _goal(goals, user_id)
    workout = _workout(user_id)
    assert goals.record_workout(workout)[0] is True
    assert goals.record_workout(workout)[0] is False
    assert goals.get(user_id, goal["goal_id"])["current_progress"] == 1


def test_each_goal_type_counts_its_own_amount_and_a_typed_goal_only_its_type(goals, user_id):
    minutes = _goal(goals, user_id, goal_type="active_minutes", target_value=100)
    swims = _goal(goals, user_id, workout_type="swimming")
    goals.record_workout(_workout(user_id, "running", 30))
    goals.record_workout(_workout(user_id, "swimming", 20))
    assert goals.get(user_id, minutes["goal_id"])["current_progress"] == 50
    assert goals.get(user_id, swims["goal_id"])["current_progress"] == 1


def test_a_workout_that_ended_before_the_goal_was_set_does_not_count(goals, user_id):
    goal = _goal(goals, user_id)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    goals.record_workout(_workout(user_id, ended_at=earlier))
    assert goals.get(user_id, goal["goal_id"])["current_progress"] == 0


def test_a_cancelled_goal_counts_no_more_and_cannot_change(goals, user_id):
    goal = _goal(goals, user_id)
    assert goals.cancel(user_id, goal["goal_id"])["status"] == "cancelled"
    goals.record_workout(_workout(user_id))
    assert goals.get(user_id, goal["goal_id"])["current_progress"] == 0
    with pytest.raises(GoalNotActive):
        goals.change(
            user_id, goal["goal_id"], validate(schemas.GoalChangeBody, {"target_value": 1})
        )


def test_moving_the_target_achieves_or_unachieves_the_goal(goals, user_id):
    goal = _goal(goals, user_id, target_value=3)
    goals.record_workout(_workout(user_id))
    lower = validate(schemas.GoalChangeBody, {"target_value": 1})
    assert goals.change(user_id, goal["goal_id"], lower)["achieved"] is True
    higher = validate(schemas.GoalChangeBody, {"target_value": 5})
    assert goals.change(user_id, goal["goal_id"], higher)["achieved"] is False
