"""The whole user journey across replicas, and the rules each step enforces."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from activity_service.service import SLOT_CLAIM, keyed_session_id
from fitness import mongo
from fitness.auth import issue_token
from fitness.mongo import REVISION
from fitness.workouts import WORKOUT_METS
from tests.support.client import minutes_ago
from tests.support.stack import activity_db


def _ago(**delta) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


def _next_year() -> str:
    return (dt.date.today() + dt.timedelta(days=365)).isoformat()


def test_it_tracks_a_goal_across_replicas(api, other_api):
    user_id, token = api.new_user(weight_kg=80)
    goal = api.create_goal(
        user_id, token, goal_type="active_minutes", target_value=30, target_date=_next_year()
    )
    assert goal["current_progress"] == 0

    quick = api.end(api.start(user_id, token, "yoga")["session_id"], token)
    assert quick["status"] == "ended"
    session = api.start(user_id, token, "cycling", start_time=_ago(minutes=45))
    end = dt.datetime.fromisoformat(session["start_time"]) + dt.timedelta(minutes=45)
    result = api.end(session["session_id"], token, end.isoformat())
    assert result["duration"] == 45
    assert result["calories_burned"] == round(WORKOUT_METS["cycling"] * 80 * 0.75, 1)

    stats = other_api.get(f"{other_api.activity_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 2
    assert stats["total_duration"] == pytest.approx(45 + quick["duration"], abs=0.01)
    assert stats["average_session_duration"] == pytest.approx(stats["total_duration"] / 2, abs=0.01)

    goals = other_api.get(f"{other_api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["current_progress"] >= 45
    assert goals[0]["achieved"] is True
    assert goals[0]["achieved_at"]


def test_it_counts_an_ended_session_once(api, other_api):
    user_id, token = api.new_user()
    api.create_goal(
        user_id, token, goal_type="workout_count", target_value=5, target_date=_next_year()
    )
    session = api.start(user_id, token)
    first = api.end(session["session_id"], token)
    again = other_api.end(session["session_id"], token)
    assert again == first
    stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 1
    goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["current_progress"] == 1
    assert goals[0]["achieved"] is False


def test_it_limits_goals_to_their_workout_type(api):
    user_id, token = api.new_user()
    api.create_goal(
        user_id,
        token,
        goal_type="workout_count",
        target_value=2,
        target_date=_next_year(),
        workout_type="swimming",
    )
    api.end(api.start(user_id, token, "running")["session_id"], token)
    api.end(api.start(user_id, token, "swimming")["session_id"], token)
    goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["current_progress"] == 1


def test_it_refuses_a_second_active_session(api):
    user_id, token = api.new_user()
    first = api.start(user_id, token)
    second = api.post(
        f"{api.activity_url}/workouts/start", {"user_id": user_id, "workout_type": "yoga"}, token
    )
    assert second.status_code == 409
    assert second.json()["error"]["fields"]["active_session_id"] == first["session_id"]
    api.end(first["session_id"], token)
    api.start(user_id, token, "yoga")


def test_a_slot_left_by_a_crashed_start_is_freed_after_its_claim_runs_out(stack, api):
    """A start killed (or failed with the store) between claiming the user's active slot and
    storing its session leaves a slot naming no session: other starts wait for it (409) while
    it may still be stored, the same start sent again takes it, and any start does once
    ``SLOT_CLAIM`` has passed."""
    user_id, token = api.new_user()
    slots = activity_db(stack)["active_sessions"]
    orphan = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    slots.insert_one({"_id": user_id, "session_id": orphan, "claimed_at": now, REVISION: 1})
    body = {"user_id": user_id, "workout_type": "yoga", "start_time": minutes_ago(10)}

    waiting = api.post(f"{api.activity_url}/workouts/start", body, token)
    assert waiting.status_code == 409
    assert waiting.json()["error"]["fields"]["active_session_id"] == orphan

    key = uuid.uuid4().hex  # the slot's start, sent again: the slot is its own
    resent = api.post(
        f"{api.activity_url}/workouts/start", body, token, headers={"Idempotency-Key": key}
    )
    assert resent.status_code == 409  # not its slot yet
    mine = keyed_session_id(user_id, key)
    mongo.update(slots.update_one, {"_id": user_id}, {"$set": {"session_id": mine}})
    resent = api.post(
        f"{api.activity_url}/workouts/start", body, token, headers={"Idempotency-Key": key}
    )
    assert (resent.status_code, resent.json()["session_id"]) == (201, mine)
    api.end(mine, token)

    mongo.update(slots.update_one, {"_id": user_id}, {"$set": {"session_id": orphan}})
    claimed_at = now - SLOT_CLAIM - dt.timedelta(seconds=1)
    mongo.update(slots.update_one, {"_id": user_id}, {"$set": {"claimed_at": claimed_at}})
    started = api.start(user_id, token, "yoga")
    assert slots.find_one({"_id": user_id})["session_id"] == started["session_id"]


def test_it_rejects_end_before_start(api):
    user_id, token = api.new_user()
    session = api.start(user_id, token)
    response = api.post(
        f"{api.activity_url}/workouts/{session['session_id']}/end",
        {"end_time": _ago(hours=1)},
        token,
    )
    assert response.status_code == 400
    assert "end_time" in response.json()["error"]["fields"]
    doc = api.get(f"{api.activity_url}/workouts/{session['session_id']}", token).json()
    assert doc["status"] == "active"


def test_it_answers_404_for_an_unknown_session(api):
    _user_id, token = api.new_user()
    response = api.post(f"{api.activity_url}/workouts/no-such-session/end", {}, token)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


def test_it_rejects_duplicate_accounts(api):
    user = api.register()
    same_name = api.post(
        f"{api.user_url}/users/register",
        {"username": user["username"], "email": "other@example.com", "password": "long-enough"},
    )
    same_email = api.post(
        f"{api.user_url}/users/register",
        {"username": "someone_else", "email": user["email"].upper(), "password": "long-enough"},
    )
    assert same_name.status_code == 409
    assert same_email.status_code == 409
    assert "email" in same_email.json()["error"]["fields"]


def test_a_repeated_keyed_registration_answers_like_the_first_on_any_replica(api, other_api):
    name = "k" + uuid.uuid4().hex[:10]
    body = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post(f"{api.user_url}/users/register", body, headers=key)
    again = other_api.post(f"{other_api.user_url}/users/register", body, headers=key)
    unkeyed = api.post(f"{api.user_url}/users/register", body)
    other_key = api.post(f"{api.user_url}/users/register", body, headers={"Idempotency-Key": "x"})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert (unkeyed.status_code, other_key.status_code) == (409, 409)


def test_it_gives_one_message_for_any_wrong_login(api):
    user = api.register()
    wrong_password = api.post(
        f"{api.user_url}/users/login", {"email": user["email"], "password": "not-the-one"}
    )
    unknown_email = api.post(
        f"{api.user_url}/users/login", {"email": "nobody@example.com", "password": "whatever1"}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()


def test_it_keeps_users_to_their_own_data(api):
    alice_id, alice_token = api.new_user()
    bob_id, bob_token = api.new_user()
    session = api.start(bob_id, bob_token)
    forbidden = [
        api.get(f"{api.user_url}/users/{bob_id}", alice_token),
        api.get(f"{api.user_url}/users/{bob_id}/goals", alice_token),
        api.get(f"{api.activity_url}/users/{bob_id}/statistics", alice_token),
        api.get(f"{api.activity_url}/users/{bob_id}/workouts", alice_token),
        api.get(f"{api.activity_url}/workouts/{session['session_id']}", alice_token),
        api.post(f"{api.activity_url}/workouts/{session['session_id']}/end", {}, alice_token),
        api.post(
            f"{api.activity_url}/workouts/start",
            {"user_id": bob_id, "workout_type": "running"},
            alice_token,
        ),
    ]
    assert [r.status_code for r in forbidden] == [403] * len(forbidden)
    assert all(r.json()["error"]["code"] == "forbidden" for r in forbidden)
    assert api.get(f"{api.user_url}/users/{alice_id}", alice_token).status_code == 200


@pytest.mark.parametrize("service", ["user", "activity"])
def test_it_refuses_missing_expired_and_tampered_tokens(api, stack, service):
    user_id, token = api.new_user()
    secret = (stack.data_dir / "secrets" / "jwt_secret").read_text().strip()
    expired = issue_token(user_id, secret, ttl_seconds=-10)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    foreign = issue_token(user_id, "another-secret-that-is-long-enough-for-hs256", ttl_seconds=600)
    base = api.user_url if service == "user" else api.activity_url
    path = f"/users/{user_id}" if service == "user" else f"/users/{user_id}/statistics"
    for bad in (None, expired, tampered, foreign, "not-a-jwt"):
        response = api.get(base + path, bad)
        assert response.status_code == 401, (bad, response.text)
        assert response.json()["error"]["code"] == "unauthenticated"
    assert "expired" in api.get(base + path, expired).json()["error"]["message"]


def test_it_pages_through_workouts(api):
    user_id, token = api.new_user()
    ids = []
    for _ in range(5):
        session = api.start(user_id, token)
        ids.append(session["session_id"])
        api.end(session["session_id"], token)
    first = api.get(f"{api.activity_url}/users/{user_id}/workouts?limit=2", token).json()
    rest = api.get(f"{api.activity_url}/users/{user_id}/workouts?limit=10&offset=2", token).json()
    assert first["total"] == 5
    seen = [w["session_id"] for w in first["workouts"] + rest["workouts"]]
    assert seen == list(reversed(ids))


def test_it_changes_and_cancels_goals(api):
    user_id, token = api.new_user()
    goal = api.create_goal(
        user_id, token, goal_type="workout_count", target_value=3, target_date=_next_year()
    )
    url = f"{api.gateway_url}/users/{user_id}/goals/{goal['goal_id']}"
    changed = api.http.patch(
        url, json={"target_value": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert changed.json()["target_value"] == 1
    cancelled = api.http.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert cancelled.json()["status"] == "cancelled"
    api.end(api.start(user_id, token)["session_id"], token)
    assert api.get(url, token).json()["current_progress"] == 0


def test_it_ends_a_session_sent_with_no_body(api):
    user_id, token = api.new_user()
    session = api.start(user_id, token)
    response = api.http.post(
        f"{api.activity_url}/workouts/{session['session_id']}/end",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ended"


def test_it_refuses_a_workout_longer_than_a_day(api):
    user_id, token = api.new_user()
    session = api.start(user_id, token, start_time=_ago(days=2))
    response = api.post(f"{api.activity_url}/workouts/{session['session_id']}/end", {}, token)
    assert response.status_code == 400
    assert "end_time" in response.json()["error"]["fields"]


def test_it_applies_a_keyed_start_once_on_any_replica(api, other_api):
    """The gateway may resend a keyed write to another replica; the service honours the key.
    (Goal writes are sagas: each step is applied once by its saga id, tests/sagas/test_sagas.py.)"""
    user_id, token = api.new_user()
    keyed = {"Idempotency-Key": "start-1"}
    body = {"user_id": user_id, "workout_type": "running", "start_time": minutes_ago(10)}
    starts = [
        client.post(f"{client.activity_url}/workouts/start", body, token, headers=keyed)
        for client in (api, other_api)
    ]
    assert [s.status_code for s in starts] == [201, 201]
    assert starts[0].json()["session_id"] == starts[1].json()["session_id"]
    api.end(starts[0].json()["session_id"], token)
    again = api.post(f"{api.activity_url}/workouts/start", body, token, headers=keyed)
    assert again.json()["session_id"] == starts[0].json()["session_id"]
    assert again.json()["status"] == "ended"
    other = api.post(
        f"{api.activity_url}/workouts/start", body, token, headers={"Idempotency-Key": "2"}
    )
    assert other.status_code == 201 and other.json()["session_id"] != starts[0].json()["session_id"]
