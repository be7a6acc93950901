"""Every route answers bad input with a 4xx in the one JSON error shape, and stores nothing."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from tests.support.client import Api
from tests.support.stack import activity_db

FUTURE_DAY = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST_DAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()
FUTURE_MOMENT = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
GOAL = {"goal_type": "workout_count", "target_value": 3, "target_date": FUTURE_DAY}
REGISTER = {"username": "valid_name", "email": "valid@example.com", "password": "long-enough"}

# (case id, method, path template, body, expected status). Paths use {user}, {goal}, {session}.
# A body of type bytes is sent raw; anything else as JSON.
CASES = [
    ("register: not JSON", "POST", "/users/register", b"{nope", 400),
    ("register: JSON array", "POST", "/users/register", [REGISTER], 400),
    ("register: missing fields", "POST", "/users/register", {"username": "abc"}, 400),
    (
        "register: username not a string",
        "POST",
        "/users/register",
        {**REGISTER, "username": 7},
        400,
    ),
    (
        "register: operator as username",
        "POST",
        "/users/register",
        {**REGISTER, "username": {"$gt": ""}},
        400,
    ),
    ("register: operator-like key", "POST", "/users/register", {**REGISTER, "$where": "1"}, 400),
    ("register: unknown field", "POST", "/users/register", {**REGISTER, "is_admin": True}, 400),
    ("register: bad email", "POST", "/users/register", {**REGISTER, "email": "not-an-email"}, 400),
    ("register: short password", "POST", "/users/register", {**REGISTER, "password": "short"}, 400),
    ("register: weight below range", "POST", "/users/register", {**REGISTER, "weight_kg": -5}, 400),
    ("register: weight as string", "POST", "/users/register", {**REGISTER, "weight_kg": "80"}, 400),
    (
        "register: oversized body",
        "POST",
        "/users/register",
        {**REGISTER, "padding": "x" * 70_000},
        413,
    ),
    ("login: missing password", "POST", "/users/login", {"email": "a@example.com"}, 400),
    (
        "login: operator as email",
        "POST",
        "/users/login",
        {"email": {"$ne": None}, "password": "whatever1"},
        400,
    ),
    ("profile: weight as text", "PATCH", "/users/{user}", {"weight_kg": "heavy"}, 400),
    ("profile: unknown field", "PATCH", "/users/{user}", {"email": "x@example.com"}, 400),
    ("goal: unknown goal type", "POST", "/users/{user}/goals", {**GOAL, "goal_type": "fun"}, 400),
    ("goal: zero target", "POST", "/users/{user}/goals", {**GOAL, "target_value": 0}, 400),
    ("goal: negative target", "POST", "/users/{user}/goals", {**GOAL, "target_value": -3}, 400),
    ("goal: target as string", "POST", "/users/{user}/goals", {**GOAL, "target_value": "3"}, 400),
    ("goal: target as boolean", "POST", "/users/{user}/goals", {**GOAL, "target_value": True}, 400),
    (
        "goal: target NaN",
        "POST",
        "/users/{user}/goals",
        b'{"goal_type": "workout_count", '
        b'"target_value": NaN, "target_date": "' + FUTURE_DAY.encode() + b'"}',
        400,
    ),
    (
        "goal: date in the past",
        "POST",
        "/users/{user}/goals",
        {**GOAL, "target_date": PAST_DAY},
        400,
    ),
    (
        "goal: date not ISO",
        "POST",
        "/users/{user}/goals",
        {**GOAL, "target_date": "01/02/2030"},
        400,
    ),
    (
        "goal: unknown workout type",
        "POST",
        "/users/{user}/goals",
        {**GOAL, "workout_type": "sleeping"},
        400,
    ),
    ("goal: operator in body", "POST", "/users/{user}/goals", {**GOAL, "$set": {"a": 1}}, 400),
    (
        "goal change: negative target",
        "PATCH",
        "/users/{user}/goals/{goal}",
        {"target_value": -1},
        400,
    ),
    (
        "goal change: past date",
        "PATCH",
        "/users/{user}/goals/{goal}",
        {"target_date": PAST_DAY},
        400,
    ),
    ("goal change: unknown goal", "PATCH", "/users/{user}/goals/nope", {"target_value": 9}, 404),
    (
        "start: unknown workout type",
        "POST",
        "/workouts/start",
        {"user_id": "{user}", "workout_type": "sleeping"},
        400,
    ),
    ("start: missing user", "POST", "/workouts/start", {"workout_type": "running"}, 400),
    (
        "start: operator as user",
        "POST",
        "/workouts/start",
        {"user_id": {"$ne": None}, "workout_type": "running"},
        400,
    ),
    (
        "start: start time in future",
        "POST",
        "/workouts/start",
        {"user_id": "{user}", "workout_type": "running", "start_time": FUTURE_MOMENT},
        400,
    ),
    (
        "start: start time garbage",
        "POST",
        "/workouts/start",
        {"user_id": "{user}", "workout_type": "running", "start_time": "yesterday"},
        400,
    ),
    ("end: end time garbage", "POST", "/workouts/{session}/end", {"end_time": "soon"}, 400),
    ("end: end time operator", "POST", "/workouts/{session}/end", {"end_time": {"$gt": ""}}, 400),
    ("end: unknown field", "POST", "/workouts/{session}/end", {"calories": 9000}, 400),
    ("end: in the future", "POST", "/workouts/{session}/end", {"end_time": FUTURE_MOMENT}, 400),
    ("workouts: limit zero", "GET", "/users/{user}/workouts?limit=0", None, 400),
    ("workouts: limit text", "GET", "/users/{user}/workouts?limit=ten", None, 400),
    ("workouts: non-ASCII digit", "GET", "/users/{user}/workouts?limit=\u00b2", None, 400),
    (
        "start: start time too old",
        "POST",
        "/workouts/start",
        {"user_id": "{user}", "workout_type": "running", "start_time": "2020-01-01T00:00:00Z"},
        400,
    ),
    ("workouts: negative offset", "GET", "/users/{user}/workouts?offset=-1", None, 400),
    ("unknown route", "GET", "/no/such/route", None, 404),
    ("wrong method", "DELETE", "/users/register", None, 405),
]

ACTIVITY_PREFIXES = ("/workouts", "/users/{user}/workouts", "/users/{user}/statistics")


@pytest.fixture(scope="module")
def fixture_data(stack):
    """One user with a goal and an active session that the bad requests aim at."""
    api = Api(stack)
    user_id, token = api.new_user()
    goal = api.create_goal(user_id, token, **GOAL)
    session = api.start(user_id, token)
    return {"user": user_id, "goal": goal["goal_id"], "session": session["session_id"]}, token


def _snapshot(stack) -> dict:
    """Count what is stored, and the state of the fixture goal and session."""
    with sqlite3.connect(stack.data_dir / "users.db") as db:
        users = db.execute("SELECT count(*) FROM users").fetchone()[0]
        goals = db.execute("SELECT id, target_value, target_date, status FROM goals").fetchall()
    sessions = activity_db(stack)["sessions"]
    docs = sessions.find({}, sort=[("_id", 1)])
    return {
        "users": users,
        "goals": sorted(goals),
        "sessions": [(d["_id"], d["status"], d.get("end_time")) for d in docs],
    }


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "status"), [case[1:] for case in CASES], ids=[c[0] for c in CASES]
)
def test_it_rejects_bad_input_and_stores_nothing(
    api, stack, fixture_data, method, path, body, status
):
    ids, token = fixture_data
    is_activity = path.startswith(ACTIVITY_PREFIXES) and "/goals" not in path
    base = api.activity_url if is_activity else api.user_url
    if "/goals" in path and method != "GET":  # goal writes: a gateway's saga, nowhere else
        base = api.gateway_url
    headers = {"Authorization": f"Bearer {token}"}
    kwargs = {"data": body, "headers": {**headers, "Content-Type": "application/json"}}
    if not isinstance(body, bytes):
        kwargs = {"json": _fill(body, ids), "headers": headers}
    before = _snapshot(stack)

    response = api.http.request(method, base + path.format(**ids), timeout=10, **kwargs)

    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] and error["message"]
    if status == 400 and isinstance(body, dict) and path != "/users/login":
        assert error.get("fields"), "validation errors must name the fields"
    assert _snapshot(stack) == before


def test_it_lists_accepted_types_when_one_is_unknown(api, fixture_data):
    ids, token = fixture_data
    goal = api.post(
        f"{api.gateway_url}/users/{ids['user']}/goals", {**GOAL, "goal_type": "x"}, token
    )
    workout = api.post(
        f"{api.activity_url}/workouts/start", {"user_id": ids["user"], "workout_type": "x"}, token
    )
    assert (
        "workout_count, active_minutes, calories_burned"
        in goal.json()["error"]["fields"]["goal_type"]
    )
    assert "running" in workout.json()["error"]["fields"]["workout_type"]
