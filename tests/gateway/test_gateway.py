"""The gateway: routing, auth at the edge, failover across replicas, breakers, 503s."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devstack.stack import LocalStack, Replica
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import gateway_tier, make_replicas, running

FAST_BREAKERS = {
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
    "FITNESS_BREAKER_RESET_SECONDS": "2",
    "FITNESS_BREAKER_FAILURES": "3",
}


@pytest.fixture(scope="module")
def gw_stack(tmp_path_factory):
    """Two replicas of each service behind one gateway; these tests kill replicas."""
    replicas = [*make_replicas(2), *gateway_tier()]
    with running(tmp_path_factory.mktemp("gateway"), replicas, FAST_BREAKERS) as stack:
        yield stack


def _restart(stack: LocalStack, replicas: list[Replica]) -> None:
    for replica in replicas:
        stack.start_replica(replica)
    for replica in replicas:
        stack.wait_ready(replica)


def test_it_runs_the_whole_journey_through_the_gateway(gw_stack):
    api = GatewayApi(gw_stack)
    user_id, token = api.new_user()
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    assert api.post(f"{api.user_url}/users/{user_id}/goals", goal, token).status_code == 201
    api.end(api.start(user_id, token)["session_id"], token)
    stats = api.get(f"{api.user_url}/users/{user_id}/statistics", token)
    assert stats.json()["total_workouts"] == 1
    goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["achieved"] is True


def test_it_checks_tokens_at_the_edge_and_returns_the_request_id(gw_stack):
    api = GatewayApi(gw_stack)
    user_id, token = api.new_user()
    other_id, _ = api.new_user()
    assert api.get(f"{api.user_url}/users/{user_id}/goals").status_code == 401
    assert api.get(f"{api.user_url}/users/{other_id}/goals", token).status_code == 403
    response = api.http.get(
        f"{api.user_url}/users/{user_id}",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "edge-test-1"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "edge-test-1"
    assert api.get(f"{api.user_url}/nowhere").status_code == 404


def test_it_serves_reads_without_failure_while_a_replica_of_each_dies(gw_stack):
    api = GatewayApi(gw_stack)
    user_id, token = api.new_user()
    failures, done = [], threading.Event()

    def read_steadily():
        session = requests.Session()
        headers = {"Authorization": f"Bearer {token}"}
        while not done.is_set():
            for path in (f"/users/{user_id}/statistics", f"/users/{user_id}/goals"):
                response = session.get(api.user_url + path, headers=headers, timeout=15)
                if response.status_code != 200:
                    failures.append((path, response.status_code, response.text))

    readers = [threading.Thread(target=read_steadily) for _ in range(4)]
    for reader in readers:
        reader.start()
    time.sleep(1)
    victims = [gw_stack.replicas_of(s)[0] for s in ("user_service", "activity_service")]
    for victim in victims:
        gw_stack.kill(victim.name)
    time.sleep(4)
    status = requests.get(f"{api.user_url}/status", timeout=5).json()
    _restart(gw_stack, victims)
    back = wait_until(
        lambda: all(
            r["healthy"] and r["breaker"] == "closed"
            for s in requests.get(f"{api.user_url}/status", timeout=5).json()["upstreams"].values()
            for r in s["replicas"]
        )
    )
    done.set()
    for reader in readers:
        reader.join(timeout=30)

    assert failures == []
    dead = {v.url for v in victims}
    for service in status["upstreams"].values():
        for replica in service["replicas"]:
            if replica["url"] in dead:
                assert not replica["healthy"] or replica["breaker"] == "open"
    assert back, "restarted replicas were not taken back"
    log = gw_stack.log_path("gateway-1").read_text().splitlines()
    events = [json.loads(line) for line in log if line.startswith("{")]
    assert any(e.get("event", {}).get("action") == "upstream-health" for e in events)


def test_it_answers_503_with_retry_after_when_a_service_is_gone(gw_stack):
    api = GatewayApi(gw_stack)
    user_id, token = api.new_user()
    victims = gw_stack.replicas_of("activity_service")
    for victim in victims:
        gw_stack.kill(victim.name)
    try:
        started = time.monotonic()
        response = api.get(f"{api.user_url}/users/{user_id}/statistics", token)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]["code"] == "service_unavailable"
        assert elapsed < 5
    finally:
        _restart(gw_stack, victims)
    assert wait_until(
        lambda: api.get(f"{api.user_url}/users/{user_id}/statistics", token).status_code == 200
    )


def test_it_lets_concurrent_requests_to_one_replica_overlap(gw_stack):
    """The breaker must not serialise traffic: slow requests to one replica run together."""
    from gateway.upstream import Replica as Upstream

    upstream = Upstream("user_service", "http://replica.invalid")
    inside, peak, lock = 0, 0, threading.Lock()

    def request_through_breaker(_):
        nonlocal inside, peak
        assert upstream.admit()
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.3)
        with lock:
            inside -= 1
        upstream.release(None)

    with ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        list(pool.map(request_through_breaker, range(8)))
        elapsed = time.monotonic() - started
    assert peak == 8
    assert elapsed < 1.0


def test_it_opens_a_breaker_after_failures_and_tries_once_after_the_reset(gw_stack):
    from gateway.upstream import BreakerSettings, UpstreamFailure
    from gateway.upstream import Replica as Upstream

    upstream = Upstream("user_service", "http://replica.invalid", BreakerSettings(3, 10, 0.5))
    for _ in range(3):
        assert upstream.admit()
        upstream.release(UpstreamFailure("boom"))
    assert upstream.breaker_state == "open"
    assert not upstream.admit()
    time.sleep(0.6)
    assert upstream.admit()  # the one half-open trial
    assert not upstream.admit()
    upstream.release(None)
    assert upstream.breaker_state == "closed"
