"""Goal sagas through the gateway: completion, compensation, recovery, repeats, load."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import requests

from devstack.stack import LocalStack
from fitness import auth
from fitness.errors import Conflict, from_rpc_error
from fitness.v1 import activity_pb2, activity_pb2_grpc, user_pb2, user_pb2_grpc
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import gateway_tier, grpc_channel, launch, make_replicas

GOAL = {"goal_type": "workout_count", "target_value": 4, "target_date": "2099-01-01"}
QUICK_SAGAS = {
    "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "2",
    "FITNESS_SAGA_LEASE_SECONDS": "2",
    "FITNESS_SAGA_RECOVERY_SECONDS": "0.5",
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
}


def _start(data_dir: Path, env: dict[str, str]) -> LocalStack:
    return launch(data_dir, [*make_replicas(2), *gateway_tier()], env)


@pytest.fixture(scope="module")
def saga_stack(tmp_path_factory):
    stack = _start(tmp_path_factory.mktemp("sagas"), QUICK_SAGAS)
    yield stack
    stack.stop()


def _restart(stack: LocalStack, service: str) -> None:
    for replica in stack.replicas_of(service):
        if stack.processes[replica.name].poll() is not None:
            stack.start_replica(replica)
    for replica in stack.replicas_of(service):
        stack.wait_ready(replica)


def _kill_all(stack: LocalStack, service: str) -> None:
    for replica in stack.replicas_of(service):
        stack.kill(replica.name)


def _saga(api: GatewayApi, saga_id: str, token: str) -> dict:
    response = api.get(f"{api.user_url}/sagas/{saga_id}", token)
    assert response.status_code == 200, response.text
    return response.json()


def _goals_in_user_service(stack: LocalStack, user_id: str, token: str) -> list[dict]:
    url = stack.replicas_of("user_service")[0].url
    response = requests.get(
        f"{url}/users/{user_id}/goals", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()["goals"]


def test_it_runs_goal_creation_change_and_cancellation_as_sagas(saga_stack):
    api = GatewayApi(saga_stack)
    user_id, token = api.new_user()
    goals_url = f"{api.user_url}/users/{user_id}/goals"
    created = api.post(goals_url, GOAL, token)
    assert created.status_code == 201, created.text
    goal = created.json()
    assert goal == _goals_in_user_service(saga_stack, user_id, token)[0]
    saga = _saga(api, created.headers["X-Saga-ID"], token)
    assert saga["state"] == "completed"
    assert [(h["step"], h["event"]) for h in saga["history"] if h["event"] == "done"] == [
        ("create-goal", "done"),
        ("register-goal", "done"),
    ]
    suggestions = api.get(f"{api.user_url}/users/{user_id}/suggestions", token).json()
    assert [(s["goal_id"], s["remaining"]) for s in suggestions["suggestions"]] == [
        (goal["goal_id"], 4)
    ]

    changed = api.http.patch(
        f"{goals_url}/{goal['goal_id']}",
        json={"target_value": 6},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["target_value"] == 6
    suggestions = api.get(f"{api.user_url}/users/{user_id}/suggestions", token).json()
    assert suggestions["suggestions"][0]["remaining"] == 6

    cancelled = api.http.delete(
        f"{goals_url}/{goal['goal_id']}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    suggestions = api.get(f"{api.user_url}/users/{user_id}/suggestions", token).json()
    assert suggestions["suggestions"] == []


def test_no_route_but_the_gateways_saga_writes_a_goal(saga_stack, tmp_path):
    """A goal lives in both services; only the saga writes both. The user service takes goal
    writes over gRPC from the saga alone: a write sent straight to a replica would change its
    copy and leave the activity service's (suggestions) stale."""
    from user_service import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "JWT_SECRET": "x" * 40})
    methods = {m for rule in app.url_map.iter_rules() if "goals" in rule.rule for m in rule.methods}
    assert methods == {"GET", "HEAD", "OPTIONS"}

    api = GatewayApi(saga_stack)
    user_id, token = api.new_user()
    goal = api.post(f"{api.user_url}/users/{user_id}/goals", GOAL, token).json()
    replica = saga_stack.replicas_of("user_service")[0].url
    one = f"/users/{user_id}/goals/{goal['goal_id']}"
    for method, path, body in [
        ("POST", f"/users/{user_id}/goals", {**GOAL, "target_value": 9}),
        ("PATCH", one, {"target_value": 9}),
        ("DELETE", one, None),
    ]:
        answer = requests.request(
            method,
            replica + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 405, (method, answer.text)
    assert _goals_in_user_service(saga_stack, user_id, token) == [goal]
    suggestions = api.get(f"{api.user_url}/users/{user_id}/suggestions", token).json()
    assert [(s["goal_id"], s["remaining"]) for s in suggestions["suggestions"]] == [
        (goal["goal_id"], 4)
    ]


def test_it_refuses_a_bad_goal_without_leaving_anything(saga_stack):
    api = GatewayApi(saga_stack)
    user_id, token = api.new_user()
    goals_url = f"{api.user_url}/users/{user_id}/goals"
    past = api.post(goals_url, {**GOAL, "target_date": "2001-01-01"}, token)
    assert past.status_code == 400, past.text
    assert "target_date" in past.json()["error"]["fields"]
    assert _saga(api, past.headers["X-Saga-ID"], token)["state"] == "failed"
    malformed = api.post(goals_url, {**GOAL, "target_value": "lots"}, token)
    assert malformed.status_code == 400
    assert "X-Saga-ID" not in malformed.headers
    assert _goals_in_user_service(saga_stack, user_id, token) == []


def test_it_compensates_when_the_activity_service_is_down(saga_stack):
    api = GatewayApi(saga_stack)
    user_id, token = api.new_user()
    _kill_all(saga_stack, "activity_service")
    try:
        response = api.post(f"{api.user_url}/users/{user_id}/goals", GOAL, token)
    finally:
        _restart(saga_stack, "activity_service")
    assert response.status_code == 503, response.text
    assert response.json()["saga"]["state"] == "compensated"
    saga = _saga(api, response.headers["X-Saga-ID"], token)
    assert saga["state"] == "compensated"
    assert ("create-goal", "compensated") in [(h["step"], h["event"]) for h in saga["history"]]
    assert _goals_in_user_service(saga_stack, user_id, token) == []


def test_it_finishes_a_saga_after_the_coordinator_is_killed_mid_way(tmp_path):
    env = {**QUICK_SAGAS, "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "120"}
    env["FITNESS_SAGA_WAIT_SECONDS"] = "1"
    stack = _start(tmp_path, env)
    try:
        api = GatewayApi(stack)
        user_id, token = api.new_user()
        _kill_all(stack, "activity_service")
        accepted = api.post(f"{api.user_url}/users/{user_id}/goals", GOAL, token)
        assert accepted.status_code == 202, accepted.text
        saga_id = accepted.json()["saga_id"]
        # Step 1 is done, step 2 keeps failing: kill the coordinator between them.
        assert len(_goals_in_user_service(stack, user_id, token)) == 1
        gateway = stack.replicas_of("gateway")[0]
        stack.kill(gateway.name)
        _restart(stack, "activity_service")
        stack.start_replica(gateway)
        stack.wait_ready(gateway)
        assert wait_until(lambda: _saga(api, saga_id, token)["state"] == "completed", 30)
        saga = _saga(api, saga_id, token)
        assert "recovered" in [h["event"] for h in saga["history"]]
        goals = _goals_in_user_service(stack, user_id, token)
        assert [g["goal_id"] for g in goals] == [saga["goal_id"]]
        suggested = api.get(f"{api.user_url}/users/{user_id}/suggestions", token).json()
        assert [s["goal_id"] for s in suggested["suggestions"]] == [saga["goal_id"]]
    finally:
        stack.stop()


def test_a_repeated_step_has_one_effect(saga_stack):
    api = GatewayApi(saga_stack)
    user_id, token = api.new_user()
    users = user_pb2_grpc.UserServiceStub(
        grpc_channel(saga_stack, saga_stack.replicas_of("user_service")[0])
    )
    activity = activity_pb2_grpc.ActivityServiceStub(
        grpc_channel(saga_stack, saga_stack.replicas_of("activity_service")[1])
    )
    saga_id, goal_id = str(uuid.uuid4()), str(uuid.uuid4())
    create = user_pb2.CreateGoalRequest(
        user_id=user_id,
        goal_id=goal_id,
        goal_type="active_minutes",
        target_value=90,
        target_date="2099-01-01",
        step=user_pb2.StepRef(saga_id=saga_id, step="create-goal"),
    )
    first, again = (users.CreateGoal(create, timeout=5) for _ in range(2))
    assert first == again
    assert [g["goal_id"] for g in _goals_in_user_service(saga_stack, user_id, token)] == [goal_id]

    state = activity_pb2.GoalState(
        saga_id=saga_id,
        step="register-goal",
        goal_id=goal_id,
        user_id=user_id,
        goal_type="active_minutes",
        target_value=90,
        target_date="2099-01-01",
        status="active",
        created_at=first.created_at,
    )
    applied = [activity.ApplyGoal(state, timeout=5).applied for _ in range(2)]
    assert applied == [True, False]

    undo = user_pb2.StepRef(saga_id=saga_id, step="undo:create-goal", supersedes=["create-goal"])
    users.DeleteGoal(user_pb2.GoalRequest(user_id=user_id, goal_id=goal_id, step=undo), timeout=5)
    users.CreateGoal(create, timeout=5)  # delivered again after its undo: no resurrection
    assert _goals_in_user_service(saga_stack, user_id, token) == []

    # A creation that arrives only after its compensation (it was delayed) is refused.
    late = user_pb2.CreateGoalRequest()
    late.CopyFrom(create)
    late.step.saga_id = late_saga = str(uuid.uuid4())
    late.goal_id = str(uuid.uuid4())
    undo.saga_id = late_saga
    users.DeleteGoal(user_pb2.GoalRequest(user_id=user_id, goal_id=late.goal_id, step=undo))
    with pytest.raises(grpc.RpcError) as refused:
        users.CreateGoal(late, timeout=5)
    assert isinstance(from_rpc_error(refused.value), Conflict)
    assert _goals_in_user_service(saga_stack, user_id, token) == []


def test_it_completes_200_concurrent_goal_sagas(saga_stack):
    api = GatewayApi(saga_stack)
    users = user_pb2_grpc.UserServiceStub(
        grpc_channel(saga_stack, saga_stack.replicas_of("user_service")[0])
    )
    secret = (saga_stack.data_dir / "secrets" / "jwt_secret").read_text().strip()

    def new_user(_) -> tuple[str, str]:
        name = "c" + uuid.uuid4().hex[:12]
        request = user_pb2.UserRequest(
            username=name, email=f"{name}@example.com", password="correct-horse"
        )
        user_id = users.RegisterUser(request, timeout=30).user_id
        return user_id, auth.issue_token(user_id, secret, 3600)

    def create_goal(user: tuple[str, str]) -> requests.Response:
        user_id, token = user
        return requests.post(
            f"{api.user_url}/users/{user_id}/goals",
            json=GOAL,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    with ThreadPoolExecutor(16) as pool:
        people = list(pool.map(new_user, range(200)))
    with ThreadPoolExecutor(64) as pool:
        responses = list(pool.map(create_goal, people))
    assert {r.status_code for r in responses} <= {201, 202}, {r.text for r in responses}
    by_user = dict(zip(people, responses, strict=True))
    for (user_id, token), response in by_user.items():
        saga_id = response.headers["X-Saga-ID"]
        assert wait_until(lambda s=saga_id, t=token: _saga(api, s, t)["state"] == "completed", 60)
        assert len(_goals_in_user_service(saga_stack, user_id, token)) == 1
