"""Nothing a client sent is lost when the other service or a replica goes away."""

from __future__ import annotations

import pytest

from tests.support.client import Api, wait_until
from tests.support.stack import start_stack


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    """A stack of its own: these tests kill and restart replicas."""
    running = start_stack(tmp_path_factory.mktemp("resilience"))
    yield running
    running.stop()


def test_it_delivers_progress_after_the_user_service_returns(own_stack):
    api = Api(own_stack)
    user_id, token = api.new_user(weight_kg=90)
    api.create_goal(
        user_id, token, goal_type="workout_count", target_value=1, target_date="2099-01-01"
    )
    session = api.start(user_id, token)
    user_replicas = [r for r in own_stack.replicas if r.service == "user_service"]
    for replica in user_replicas:
        own_stack.kill(replica.name)

    ended = api.end(session["session_id"], token)

    assert ended["status"] == "ended"
    assert ended["calories_burned"] is not None
    for replica in user_replicas:
        own_stack.start_replica(replica)
    for replica in user_replicas:
        own_stack.wait_ready(replica)

    def achieved() -> bool:
        goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
        return goals[0]["achieved"]

    assert wait_until(achieved), "the outbox never delivered the workout"
    goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["current_progress"] == 1


def test_it_keeps_data_across_a_restart_of_every_replica(own_stack):
    api = Api(own_stack)
    user_id, token = api.new_user()
    session = api.start(user_id, token)
    api.end(session["session_id"], token)
    email = api.get(f"{api.user_url}/users/{user_id}", token).json()["email"]
    for replica in own_stack.replicas:
        own_stack.kill(replica.name)
    for replica in own_stack.replicas:
        own_stack.start_replica(replica)
    for replica in own_stack.replicas:
        own_stack.wait_ready(replica)

    fresh = Api(own_stack, 1, 1)
    assert fresh.login(email)
    stats = fresh.get(f"{fresh.activity_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 1


def test_it_starts_workouts_with_the_default_weight_while_users_are_down(own_stack):
    api = Api(own_stack)
    user_id, token = api.new_user(weight_kg=120)
    user_replicas = [r for r in own_stack.replicas if r.service == "user_service"]
    for replica in user_replicas:
        own_stack.kill(replica.name)
    try:
        session = api.start(user_id, token, "walking")
        ended = api.end(session["session_id"], token)
        assert ended["status"] == "ended"
    finally:
        for replica in user_replicas:
            own_stack.start_replica(replica)
        for replica in user_replicas:
            own_stack.wait_ready(replica)
