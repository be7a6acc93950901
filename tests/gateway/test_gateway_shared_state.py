"""The gateway's Redis-backed state: sharded read cache, login limits, Idempotency-Key records."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from devstack.stack import REDIS
from gateway.shards import ShardedRedis
from tests.support.client import GatewayApi, wait_until
from tests.support.stack import gateway_tier, log_events, make_replicas, running

GOAL = {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"}


@pytest.fixture(scope="module")
def cached_stack(tmp_path_factory):
    """Two replicas of each service, three cache nodes and two gateways sharing them."""
    replicas = [*make_replicas(2), *gateway_tier(gateways=2, cache_nodes=3)]
    env = {
        "FITNESS_CACHE_PROBE_SECONDS": "0.2",
        "FITNESS_LOGIN_FAILURES_PER_ACCOUNT": "3 per minute",
        "FITNESS_LOGIN_FAILURES_PER_ADDRESS": "6 per minute",
        # Tests pose as many clients by sending X-Forwarded-For through one trusted hop.
        "FITNESS_TRUSTED_PROXY_HOPS": "1",
    }
    with running(tmp_path_factory.mktemp("cached"), replicas, env) as stack:
        yield stack


def _keys(count: int) -> list[str]:
    return [f"fgt:cache:{{user-{n}}}:v" for n in range(count)]


def test_it_moves_about_one_nth_of_the_keys_when_a_node_leaves_or_joins():
    four = [f"redis://10.0.0.{n}:6379/0" for n in range(1, 5)]
    keys = _keys(20_000)
    ring = ShardedRedis(four)
    before = {key: ring.node_for(key) for key in keys}

    ring.mark_down(four[0], "test")
    after_leave = {key: ring.node_for(key) for key in keys}
    moved = [key for key in keys if before[key] != after_leave[key]]
    assert all(before[key] == four[0] for key in moved), "keys of live nodes moved"
    assert 0.15 < len(moved) / len(keys) < 0.35

    five = ShardedRedis([*four, "redis://10.0.0.5:6379/0"])
    after_join = {key: five.node_for(key) for key in keys}
    moved = [key for key in keys if before[key] != after_join[key]]
    assert all(after_join[key] == "redis://10.0.0.5:6379/0" for key in moved)
    assert 0.1 < len(moved) / len(keys) < 0.3


def test_it_serves_repeated_reads_from_the_cache_and_drops_them_after_a_write(cached_stack):
    api = GatewayApi(cached_stack)
    user_id, token = api.new_user()
    path = f"{api.user_url}/users/{user_id}/statistics"
    first, second = api.get(path, token), api.get(path, token)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.json() == first.json()

    api.end(api.start(user_id, token)["session_id"], token)
    third = api.get(path, token)
    assert third.headers["X-Cache"] == "MISS"
    assert third.json()["total_workouts"] == first.json()["total_workouts"] + 1


def test_it_shares_the_cache_and_its_invalidation_between_gateways(cached_stack):
    one, two = GatewayApi(cached_stack, 0), GatewayApi(cached_stack, 1)
    user_id, token = one.new_user()
    path = f"/users/{user_id}/goals"
    assert one.get(one.user_url + path, token).headers["X-Cache"] == "MISS"
    assert two.get(two.user_url + path, token).headers["X-Cache"] == "HIT"
    assert two.post(two.user_url + path, GOAL, token).status_code == 201
    fresh = one.get(one.user_url + path, token)
    assert fresh.headers["X-Cache"] == "MISS"
    assert len(fresh.json()["goals"]) == 1


def test_it_keeps_answering_when_a_cache_node_dies_and_hits_recover(cached_stack):
    api = GatewayApi(cached_stack)
    users = [api.new_user() for _ in range(12)]
    paths = [(f"{api.user_url}/users/{uid}/statistics", token) for uid, token in users]
    for path, token in paths:
        api.get(path, token)
    victim = cached_stack.replicas_of(REDIS)[0]
    cached_stack.kill(victim.name)
    try:
        during = [api.get(path, token) for path, token in paths]
        assert [r.status_code for r in during] == [200] * len(paths)
        # Keys of the dead node now live on the others: the next round hits again.
        after = [api.get(path, token).headers["X-Cache"] for path, token in paths]
        assert after.count("HIT") == len(paths)
        nodes = requests.get(f"{api.user_url}/status", timeout=5).json()["cache_nodes"]
        assert {urlsplit(n["url"]).port: n["in_ring"] for n in nodes}[victim.http_port] is False
    finally:
        cached_stack.start_replica(victim)
        cached_stack.wait_ready(victim)
    events = log_events(cached_stack.log_path("gateway-1"))
    actions = [e.get("event", {}).get("action") for e in events]
    assert "cache-node-down" in actions
    assert wait_until(
        lambda: (
            "cache-node-up"
            in [
                e.get("event", {}).get("action")
                for e in log_events(cached_stack.log_path("gateway-1"))
            ]
        )
    )


def _login(api: GatewayApi, email: str, password: str, address: str) -> requests.Response:
    return api.http.post(
        f"{api.user_url}/users/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address},
        timeout=10,
    )


def test_it_limits_failed_logins_per_account_across_gateways(cached_stack):
    one, two = GatewayApi(cached_stack, 0), GatewayApi(cached_stack, 1)
    user = one.register()
    statuses = [
        _login(api, user["email"], "wrong", "10.1.0.1").status_code for api in (one, two, one)
    ]
    assert statuses == [401, 401, 401]
    refused = _login(two, user["email"], user["password"], "10.1.0.2")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    other = one.register()
    assert _login(one, other["email"], other["password"], "10.1.0.1").status_code == 200


CONTENT_TYPES = [
    None,
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_it_limits_failed_logins_per_account_whatever_the_content_type(cached_stack, content_type):
    api = GatewayApi(cached_stack)
    user = api.register()
    headers = {} if content_type is None else {"Content-Type": content_type}

    def login(password: str, email: str, address: str) -> int:
        raw = json.dumps({"email": email, "password": password}).encode()
        sent = {**headers, "X-Forwarded-For": address}
        answer = api.http.post(f"{api.user_url}/users/login", data=raw, headers=sent, timeout=10)
        return answer.status_code

    # Every wrong guess from another address, the address in another case: one account.
    guesses = [user["email"], user["email"].upper(), user["email"].title()]
    case = CONTENT_TYPES.index(content_type)  # addresses of its own: only the account is limited
    statuses = [login("wrong", email, f"10.3.{case}.{n}") for n, email in enumerate(guesses)]
    assert statuses == [401] * 3
    assert login(user["password"], user["email"], f"10.3.{case}.9") == 429


def test_it_limits_failed_logins_per_address(cached_stack):
    api = GatewayApi(cached_stack)
    address = "10.2.0.1"
    for n in range(6):
        assert _login(api, f"nobody{n}@example.com", "wrong", address).status_code == 401
    user = api.register()
    assert _login(api, user["email"], user["password"], address).status_code == 429
    assert _login(api, user["email"], user["password"], "10.2.0.2").status_code == 200


def _post_with_key(api: GatewayApi, path: str, body: dict, token: str, key: str):
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    return api.http.post(api.user_url + path, json=body, headers=headers, timeout=10)


def test_it_returns_the_first_response_for_a_repeated_idempotency_key(cached_stack):
    one, two = GatewayApi(cached_stack, 0), GatewayApi(cached_stack, 1)
    user_id, token = one.new_user()
    path, key = f"/users/{user_id}/goals", str(uuid.uuid4())
    first = _post_with_key(one, path, GOAL, token, key)
    again = _post_with_key(two, path, GOAL, token, key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Saga-ID"] == first.headers["X-Saga-ID"]  # the same saga, told again
    assert len(one.get(one.user_url + path, token).json()["goals"]) == 1

    reused = _post_with_key(one, path, {**GOAL, "target_value": 9}, token, key)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert _post_with_key(one, path, GOAL, token, "").status_code == 400


def test_it_applies_concurrent_requests_with_one_key_once(cached_stack):
    api = GatewayApi(cached_stack)
    user_id, token = api.new_user()
    path, key = f"/users/{user_id}/goals", str(uuid.uuid4())
    barrier = threading.Barrier(8)

    def send(_):
        barrier.wait()
        return _post_with_key(GatewayApi(cached_stack), path, GOAL, token, key)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    created = {r.json()["goal_id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    time.sleep(0.2)
    assert len(api.get(api.user_url + path, token).json()["goals"]) == 1
