"""A saga has one driver, even when its coordinator's lease runs out during a long call.

Found by the load run (bench/load_knee.py): under overload a gRPC call outlasted the lease, the
same gateway's recovery started a second driver under the same owner, one driver compensated
the saga while the other completed it, and a goal answered 202, later "completed", was gone.
"""

from __future__ import annotations

import os
import signal
import time

import requests

from devstack.stack import STATE_REDIS, Replica
from gateway.sagas.log import Saga, SagaLog
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import free_port, gateway_tier, log_events, make_replicas, running

GOAL = {"goal_type": "workout_count", "target_value": 4, "target_date": "2099-01-01"}
SHORT_LEASE = {
    "FITNESS_SAGA_LEASE_SECONDS": "1",
    "FITNESS_SAGA_RECOVERY_SECONDS": "0.2",
    "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "4",
    "FITNESS_SAGA_WAIT_SECONDS": "0.5",
    "FITNESS_GRPC_TIMEOUT_SECONDS": "3",
}
TERMINAL = ("completed", "compensated", "failed")


def test_a_coordinator_does_not_recover_a_saga_it_is_still_driving(tmp_path):
    replicas = [*make_replicas(1), *gateway_tier()]
    with running(tmp_path, replicas, SHORT_LEASE) as stack:
        api = GatewayApi(stack)
        user_id, token = api.new_user()
        user_service = stack.processes["user_service-1"]
        os.killpg(user_service.pid, signal.SIGSTOP)  # step 1's call hangs past the 1 s lease
        try:
            answer = api.post(f"{api.user_url}/users/{user_id}/goals", GOAL, token)
            saga_id = answer.headers["X-Saga-ID"]
            time.sleep(2.5)  # lease and several recovery rounds pass while the call hangs
        finally:
            os.killpg(user_service.pid, signal.SIGCONT)
        saga = {}

        def settled() -> bool:
            nonlocal saga
            saga = api.get(f"{api.user_url}/sagas/{saga_id}", token).json()
            return saga.get("state") in TERMINAL

        assert wait_until(settled, timeout=30)
        messages = [e["message"] for e in log_events(stack.log_path("gateway-1"))]
        assert not [m for m in messages if m.startswith(f"recovering saga {saga_id}")]
        goals = requests.get(
            f"{stack.replicas_of('user_service')[0].url}/users/{user_id}/goals",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()["goals"]
        # The saga's outcome and the store agree.
        assert len(goals) == (1 if saga["state"] == "completed" else 0), (saga, goals)


def test_a_driver_whose_lease_ran_out_cannot_overwrite_a_finished_saga(tmp_path):
    node = Replica(STATE_REDIS, "state-redis", free_port(), 0)
    with running(tmp_path, [node], {}) as stack:
        client = stack.redis_client(node, socket_timeout=5)
        saga_log = SagaLog(client, lease_seconds=0.2)
        first = Saga("create_goal", "user-1", {})
        assert saga_log.checkpoint(first, "gateway-a")
        assert wait_until(lambda: client.get(f"fgt:saga:{first.id}:lease") is None, timeout=10)
        assert saga_log.acquire(first.id, "gateway-b")  # recovery elsewhere takes it over
        taken_over = saga_log.read(first.id)
        taken_over.state = "completed"
        assert saga_log.checkpoint(taken_over, "gateway-b")

        first.state = "compensating"  # the old driver wakes up from its long call
        assert not saga_log.checkpoint(first, "gateway-a")
        assert saga_log.read(first.id).state == "completed"
