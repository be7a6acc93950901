"""Slow and broken networks between the gateway and a replica, through a TCP fault proxy.

Two user_service replicas; the gateway reaches the first one (HTTP and gRPC) only through a
:class:`faultproxy.FaultProxy`, so the test can make that path slow, silent, reset or dropped
while the replica itself stays healthy. What must hold for each fault:

- reads (and logins, which change nothing) are rerouted to the healthy replica and succeed;
- a non-idempotent write succeeds or gets a clear JSON error (502/503/504, ``error.code``), and
  the write is then either wholly there or not there at all;
- the faulty replica's breaker opens (``GET /status``) once it got enough requests (or its
  health check took it out of the ring first), and no request hangs: each returns
  within the gateway's own timeouts plus a margin (a bound on hanging, not a speed target);
- once the network is fine again the replica is taken back.

The gRPC path (saga steps from the gateway, ``GetUser``/``RecordWorkout`` from the activity
service) gets the same faults: deadlines fire and the other replica is used, once.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from devstack.stack import LocalStack
from tests.support.client import GatewayApi, wait_until
from tests.support.faultproxy import FaultProxy
from tests.support.stack import gateway_tier, log_events, make_replicas, running

CONNECT_TIMEOUT, READ_TIMEOUT, GRPC_TIMEOUT = 0.5, 5.0, 1.0
# Two replicas: at most two attempts of connect + read each, then a generous margin.
HANG_BOUND = 2 * (CONNECT_TIMEOUT + READ_TIMEOUT) + 5
FAULTS = {
    "latency": {"latency": READ_TIMEOUT + 2},
    "blackhole": {},
    "reset": {},
    "drop": {},
}
GRPC_FAULTS = {"latency": {"latency": GRPC_TIMEOUT + 2}, "blackhole": {}, "reset": {}}
CLEAR_ERRORS = {502, 503, 504}
BREAKER_FAILURES = 3


@dataclass
class Net:
    stack: LocalStack
    http: FaultProxy  # in front of user_service-1's HTTP port
    grpc: FaultProxy  # in front of user_service-1's gRPC port

    @property
    def faulty_url(self) -> str:
        return f"http://{self.http.address}"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    replicas = [*make_replicas(2), *gateway_tier()]
    first, second = replicas[0], replicas[1]  # user_service-1, user_service-2
    http, grpc = FaultProxy(first.http_port).start(), FaultProxy(first.grpc_port).start()
    env = {
        "FITNESS_USER_HTTP_REPLICAS": f"http://{http.address},{second.url}",
        "FITNESS_USER_GRPC_TARGETS": f"{grpc.address},{second.grpc_target}",
        "FITNESS_UPSTREAM_CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
        "FITNESS_UPSTREAM_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "FITNESS_GRPC_TIMEOUT_SECONDS": str(GRPC_TIMEOUT),
        "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "4",
        "FITNESS_SAGA_WAIT_SECONDS": "8",
        "FITNESS_HEALTH_INTERVAL_SECONDS": "5",
        # Longer than the burst below, so that mostly the breakers (passive) see the fault first.
        "FITNESS_HEALTH_TIMEOUT_SECONDS": "4",
        "FITNESS_BREAKER_FAILURES": str(BREAKER_FAILURES),
        "FITNESS_BREAKER_RESET_SECONDS": "2",
    }
    try:
        with running(tmp_path_factory.mktemp("netfaults"), replicas, env) as stack:
            yield Net(stack, http, grpc)
    finally:
        http.stop()
        grpc.stop()


def _timed(call) -> tuple[int, dict | None]:
    """Return (status, JSON body or None); a request that outlives HANG_BOUND fails the test."""
    try:
        response = call()
    except requests.Timeout:
        pytest.fail(f"a request hung for more than {HANG_BOUND}s")
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


def _replica_status(net: Net) -> dict:
    gateway = net.stack.replicas_of("gateway")[0].url
    status = requests.get(f"{gateway}/status", timeout=5).json()
    replicas = status["upstreams"]["user_service"]["replicas"]
    return next(r for r in replicas if r["url"] == net.faulty_url)


def _back_in_ring(net: Net, api: GatewayApi, user_id: str, token: str) -> bool:
    before = _replica_status(net)["requests"]
    for _ in range(4):
        api.http.get(f"{api.user_url}/users/{user_id}", headers=_auth(token), timeout=HANG_BOUND)
    now = _replica_status(net)
    return now["breaker"] == "closed" and now["healthy"] and now["requests"] > before


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", FAULTS)
def test_requests_reroute_or_fail_clearly_and_the_breaker_opens(net, mode):
    api = GatewayApi(net.stack)
    api_user = api.register()
    user_id, token = api_user["user_id"], api.login(api_user["email"])
    url, http = api.user_url, requests.Session()

    def read():
        return http.get(f"{url}/users/{user_id}", headers=_auth(token), timeout=HANG_BOUND)

    # Few password hashes at once (argon2 is slow on purpose): the healthy replica must keep
    # up with all the traffic within the read timeout, or its own breaker trips too.
    accounts = [api_account(n) for n in range(2)]

    def register(body):
        return http.post(f"{url}/users/register", json=body, timeout=HANG_BOUND)

    def login():  # a POST that changes nothing: rerouted like a read
        body = {"email": api_user["email"], "password": "correct-horse"}
        return http.post(f"{url}/users/login", json=body, timeout=HANG_BOUND)

    before = _replica_status(net)["requests"]
    net.http.set(mode, **FAULTS[mode])
    try:
        # One at a time, so that round-robin sends one of them into the fault.
        logins = [_timed(login) for _ in range(2)]
        after_logins = _replica_status(net)
        tried_faulty = after_logins["requests"] > before
        with ThreadPoolExecutor(12) as pool:
            reads = [pool.submit(_timed, read) for _ in range(6)]
            writes = [pool.submit(_timed, lambda b=b: register(b)) for b in accounts]
            reads, writes = [f.result() for f in reads], [f.result() for f in writes]
        during = _replica_status(net)
    finally:
        net.http.set("pass")

    # Unless a health check saw the fault first (a reset or a drop fails one at once) and took
    # the replica out of the ring: then no login should go there.
    assert tried_faulty or not after_logins["healthy"], (logins, after_logins)
    assert [status for status, _ in logins] == [200, 200], logins
    assert [status for status, _ in reads] == [200] * len(reads), reads
    # Out of the ring: by its breaker, or by its health check when that saw the fault first and
    # kept the requests away (the breaker also counts failures of the last 10 s, before this).
    assert during["breaker"] == "open" or not during["healthy"], during
    if during["requests"] - before >= BREAKER_FAILURES:
        assert during["breaker"] == "open", during
    for status, body in writes:
        assert status == 201 or (status in CLEAR_ERRORS and body["error"]["code"]), (status, body)
    assert wait_until(lambda: _back_in_ring(net, api, user_id, token), timeout=40)
    for (status, _), account in zip(writes, accounts, strict=True):
        credentials = {"email": account["email"], "password": account["password"]}
        login = http.post(f"{url}/users/login", json=credentials, timeout=HANG_BOUND).status_code
        if status == 201:
            assert login == 200, "an acknowledged registration was lost"
        elif status == 503:
            assert login == 401, "a write refused with 503 was applied"
        else:  # 502/504: the outcome was unknown; it must be all there or not there
            assert login in (200, 401)


def api_account(n: int) -> dict[str, str]:
    name = f"nf{n}{dt.datetime.now().strftime('%H%M%S%f')}"
    return {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}


@pytest.mark.parametrize("mode", GRPC_FAULTS)
def test_grpc_deadlines_fire_and_the_other_replica_is_used_once(net, mode):
    api = GatewayApi(net.stack)
    user_id, token = api.new_user(weight_kg=90)
    # Workouts that began 30 minutes ago and end a minute from now: after the goals were made.
    now = dt.datetime.now(dt.UTC)
    started, finished = (now - dt.timedelta(minutes=30)).isoformat(), ""
    goal = {"goal_type": "workout_count", "target_value": 5, "target_date": "2099-01-01"}
    net.grpc.set(mode, **GRPC_FAULTS[mode])
    try:
        finished = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
        # Several calls, so that round-robin sends some of them to the faulty replica.
        created = [
            _timed(lambda: api.post(f"{api.user_url}/users/{user_id}/goals", goal, token))
            for _ in range(3)
        ]
        ended = []
        for _ in range(2):
            status, session = _timed(
                lambda: api.post(
                    f"{api.activity_url}/workouts/start",
                    {"user_id": user_id, "workout_type": "running", "start_time": started},
                    token,
                )
            )
            assert status == 201, session
            path = f"{api.activity_url}/workouts/{session['session_id']}/end"
            ended.append(_timed(lambda p=path: api.post(p, {"end_time": finished}, token)))
    finally:
        net.grpc.set("pass")

    assert [status for status, _ in created] == [201] * 3, created
    assert [status for status, _ in ended] == [200] * 2, ended
    # The weight came from a user replica (not the 70 kg fallback): running is 9.8 MET.
    for _, body in ended:
        assert body["calories_burned"] == round(9.8 * 90 * body["duration"] / 60, 1), body

    def counted() -> bool:
        goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
        return [g["current_progress"] for g in goals] == [2.0] * 3

    assert wait_until(counted, timeout=30), "each goal must count each workout exactly once"
    assert _grpc_served_by_first_replica_again(net, api, user_id, token)


def _grpc_served_by_first_replica_again(net: Net, api: GatewayApi, user_id, token) -> bool:
    log_path = net.stack.log_path("user_service-1")

    def grpc_calls() -> int:
        return sum(1 for e in log_events(log_path) if e.get("rpc", {}).get("method"))

    before = grpc_calls()

    def served() -> bool:
        api.post(
            f"{api.activity_url}/workouts/start",
            {"user_id": user_id, "workout_type": "yoga"},
            token,
        )
        active = api.get(f"{api.activity_url}/users/{user_id}/workouts?limit=1", token).json()
        session = active["workouts"][0]
        if session["status"] == "active":
            api.post(f"{api.activity_url}/workouts/{session['session_id']}/end", {}, token)
        return grpc_calls() > before

    return wait_until(served, timeout=30, interval=0.5)


def test_an_open_breaker_reads_half_open_once_its_reset_time_has_passed():
    """With no traffic, an open breaker must not keep the gateway unready for ever.

    pybreaker leaves "open" only at the next call; readiness counts open breakers, so a gateway
    whose replicas all tripped (and that a load balancer therefore stopped sending requests to)
    would never have become ready again.
    """
    from gateway.upstream import BreakerSettings, Pool, UpstreamFailure
    from gateway.upstream import Replica as Upstream

    upstream = Upstream("user_service", "http://replica.invalid", BreakerSettings(2, 10, 0.3))
    pool = Pool("user_service", [upstream])
    for _ in range(2):
        assert upstream.admit()
        upstream.release(UpstreamFailure("boom"))
    assert upstream.breaker_state == "open"
    assert pool.available() == 0
    assert wait_until(lambda: upstream.breaker_state == "half-open", timeout=10)
    assert pool.available() == 1
    assert upstream.admit()  # the trial request goes through
    upstream.release(None)
    assert upstream.breaker_state == "closed"


def test_a_request_stops_rerouting_at_its_deadline():
    """Three replicas that accept and never answer: one GET must not wait 3 read timeouts."""
    import socket
    import time

    from gateway.proxy import Proxy, Settings
    from gateway.upstream import BreakerSettings, Pool
    from gateway.upstream import Replica as Upstream

    silent = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]  # listen, never read
    try:
        upstreams = [
            Upstream("user_service", f"http://127.0.0.1:{s.getsockname()[1]}", BreakerSettings())
            for s in silent
        ]
        settings = Settings(
            upstream_connect_timeout_seconds=0.2,
            upstream_read_timeout_seconds=1.0,
            upstream_deadline_seconds=1.5,
        )
        proxy = Proxy({"user_service": Pool("user_service", upstreams)}, settings)
        started = time.monotonic()
        answer = proxy.forward("user_service", "GET", "/users/x/goals", b"", {})
        took = time.monotonic() - started
    finally:
        for server in silent:
            server.close()
    assert answer.status == 504, answer.body
    assert b"upstream_timeout" in answer.body
    # A second whole read timeout (1 s) would outlive the deadline (0.5 s left): not started.
    assert took < settings.upstream_deadline_seconds, took
