"""Past workouts logged in one call, and the minimum that makes any workout count.

Through a gateway, as a client would: a logged workout counts in statistics and goals like a live
one, is stored once however often it is sent, and bad input stores nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest

from fitness.workouts import MIN_WORKOUT_MINUTES, WORKOUT_METS
from tests.support.client import GatewayApi


def _ago(**delta) -> dt.datetime:
    """Return a moment ``delta`` ago, to the millisecond (as the store keeps it)."""
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000) - dt.timedelta(**delta)


def _log(api: GatewayApi, user_id: str, token: str, **body):
    return api.post(f"{api.user_url}/users/{user_id}/workouts", body, token)


def _statistics(api: GatewayApi, user_id: str, token: str) -> dict:
    return api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()


def _goal(api: GatewayApi, user_id: str, token: str, **body) -> dict:
    target_date = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    created = api.post(
        f"{api.user_url}/users/{user_id}/goals", {"target_date": target_date, **body}, token
    )
    assert created.status_code == 201, created.text
    return created.json()


def _goals(api: GatewayApi, user_id: str, token: str) -> list[dict]:
    return api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]


def test_a_past_workout_logged_in_one_call_counts_like_a_live_one(api):
    user_id, token = api.new_user(weight_kg=80)
    goal = _goal(api, user_id, token, goal_type="workout_count", target_value=1)

    # Last month: before the goal existed, so it counts in statistics but not in the goal.
    month_ago = _log(
        api,
        user_id,
        token,
        workout_type="running",
        start_time=_ago(days=40).isoformat(),
        duration=30,
    )
    assert month_ago.status_code == 201, month_ago.text
    old = month_ago.json()
    assert (old["status"], old["source"], old["duration"]) == ("ended", "logged", 30.0)
    assert old["calories_burned"] == round(WORKOUT_METS["running"] * 80 * 0.5, 1)
    assert _goals(api, user_id, token)[0]["current_progress"] == 0

    # Just finished, logged by hand: it ends after the goal was made, so it counts towards it.
    sets = [
        {"exercise": "Squat", "muscle_group": "Legs", "reps": 5, "weight_kg": 100},
        {"exercise": "Plank", "reps": 1},
    ]
    morning = _log(
        api,
        user_id,
        token,
        workout_type="strength",
        start_time=_ago(minutes=60).isoformat(),
        end_time=_ago(minutes=0).isoformat().replace("+00:00", "Z"),
        calories_burned=412.5,
        average_heart_rate=131,
        sets=sets,
    )
    assert morning.status_code == 201, morning.text
    logged = morning.json()
    assert (logged["duration"], logged["calories_burned"]) == (60.0, 412.5)
    assert logged["average_heart_rate"] == 131 and logged["distance_km"] is None
    assert logged["sets"] == [{**sets[0], "weight_kg": 100.0}, sets[1]]
    assert api.get(f"{api.user_url}/workouts/{logged['session_id']}", token).json() == logged

    stats = _statistics(api, user_id, token)
    assert (stats["total_workouts"], stats["total_duration"]) == (2, 90.0)
    assert stats["total_calories_burned"] == round(old["calories_burned"] + 412.5, 1)
    (after,) = _goals(api, user_id, token)
    assert (after["goal_id"], after["current_progress"], after["achieved"]) == (
        goal["goal_id"],
        1,
        True,
    )
    listed = api.get(f"{api.user_url}/users/{user_id}/workouts", token).json()
    assert [w["session_id"] for w in listed["workouts"]] == [
        logged["session_id"],
        old["session_id"],
    ]


def test_the_same_workout_sent_twice_is_stored_once(api):
    user_id, token = api.new_user()
    start = _ago(days=3).isoformat()
    first = _log(api, user_id, token, workout_type="yoga", start_time=start, duration=20)
    assert first.status_code == 201, first.text
    again = _log(api, user_id, token, workout_type="yoga", start_time=start, duration=25)
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "workout_exists"
    assert error["fields"]["session_id"] == first.json()["session_id"]
    other_type = _log(api, user_id, token, workout_type="walking", start_time=start, duration=20)
    assert other_type.status_code == 201, other_type.text
    assert _statistics(api, user_id, token)["total_workouts"] == 2


def _bad_logs() -> list[tuple[str, dict, str]]:
    """(case, changes to a good body, the field named): a change of None drops the field."""
    start = _ago(days=2)
    row = [{"exercise": "Row", "reps": 1}]
    return [
        ("both", {"end_time": (start + dt.timedelta(minutes=10)).isoformat()}, "duration"),
        ("neither", {"duration": None}, "end_time"),
        ("too short", {"duration": MIN_WORKOUT_MINUTES / 2}, "duration"),
        ("ends before it starts", {"duration": None, "end_time": _ago(days=3).isoformat()},
         "end_time"),
        ("over a day", {"duration": 24 * 60 + 1}, "duration"),
        ("ends in the future", {"start_time": _ago(minutes=5).isoformat()}, "duration"),
        ("starts in the future", {"start_time": _ago(minutes=-60).isoformat()}, "start_time"),
        ("before 1990", {"start_time": "1989-12-31T23:00:00Z"}, "start_time"),
        ("unknown type", {"workout_type": "chess"}, "workout_type"),
        ("negative distance", {"distance_km": -1}, "distance_km"),
        ("a set without reps", {"sets": [{"exercise": "Row"}]}, "sets.0.reps"),
        ("a blank exercise", {"sets": [{"exercise": " ", "reps": 3}]}, "sets.0.exercise"),
        ("too many sets", {"sets": row * 501}, "sets"),
        ("unknown field", {"mood": "great"}, "mood"),
        ("text for a number", {"duration": "30"}, "duration"),
    ]  # fmt: skip


@pytest.mark.parametrize(("case", "changes", "field"), _bad_logs(), ids=[c[0] for c in _bad_logs()])
def test_a_bad_log_is_refused_naming_its_field_and_stores_nothing(api, case, changes, field):
    user_id, token = api.new_user()
    body = {"workout_type": "rowing", "start_time": _ago(days=2).isoformat(), "duration": 30}
    body = {name: value for name, value in {**body, **changes}.items() if value is not None}
    refused = _log(api, user_id, token, **body)
    assert refused.status_code == 400, refused.text
    assert field in refused.json()["error"]["fields"], refused.json()
    listed = api.get(f"{api.user_url}/users/{user_id}/workouts", token).json()
    assert listed["total"] == 0
    assert _statistics(api, user_id, token)["total_workouts"] == 0


def test_nobody_logs_a_workout_for_someone_else(api):
    owner, owner_token = api.new_user()
    _, intruder_token = api.new_user()
    start = _ago(days=1).isoformat()
    refused = _log(api, owner, intruder_token, workout_type="yoga", start_time=start, duration=30)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden"
    assert _statistics(api, owner, owner_token)["total_workouts"] == 0


def test_a_live_session_shorter_than_the_minimum_ends_discarded_and_counts_nowhere(api):
    user_id, token = api.new_user()
    _goal(api, user_id, token, goal_type="workout_count", target_value=3)
    started = api.start(user_id, token, "hiit", start_time=None)
    ended = api.end(started["session_id"], token)
    assert (ended["status"], ended["source"]) == ("discarded", "live")
    assert ended["duration"] < MIN_WORKOUT_MINUTES
    assert api.end(started["session_id"], token) == ended  # ending again changes nothing

    counted = api.start(
        user_id, token, "hiit", start_time=_ago(minutes=MIN_WORKOUT_MINUTES + 1).isoformat()
    )
    assert api.end(counted["session_id"], token)["status"] == "ended"

    assert _statistics(api, user_id, token)["total_workouts"] == 1
    assert _goals(api, user_id, token)[0]["current_progress"] == 1
    listed = api.get(f"{api.user_url}/users/{user_id}/workouts", token).json()
    assert [w["status"] for w in listed["workouts"]] == ["discarded", "ended"]  # by start
