"""Security headers on every gateway answer, and CORS only for the origins configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack, Replica
from gateway.docs import PAGE_POLICY
from tests.support.hostile import STACK_ENV, Answer, Target, new_user
from tests.support.stack import free_port, gateway_tier, make_replicas, running

ALLOWED = "https://app.example.com"
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
CORS_ENV = {**STACK_ENV, "FITNESS_LOGIN_FAILURES_PER_ACCOUNT": "2 per 15 minutes"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    """One replica of each service behind a gateway with the default settings (no CORS)."""
    data_dir = tmp_path_factory.mktemp("headers")
    with running(data_dir, make_replicas(1) + gateway_tier(1, 1), CORS_ENV) as started:
        yield started


@pytest.fixture(scope="module")
def cors_gateway(stack) -> Iterator[Target]:
    """A second gateway in front of the same services, allowing two browser origins."""
    gateway = Replica("gateway", "gateway-cors", free_port(), 0)
    env = {
        **stack.env_for(stack.replicas_of("gateway")[0]),  # its Redis servers and credentials
        "FITNESS_CORS_ORIGINS": f"{ALLOWED}, https://other.example.com",
        "FITNESS_HSTS_SECONDS": "31536000",  # as if clients reached it through TLS
    }
    extra = LocalStack(stack.data_dir, [gateway], extra_env=env)
    try:
        extra.start()
        yield Target(gateway.url, stack.data_dir, stack.mongo_url)
    finally:
        extra.stop()


def _target(stack: LocalStack) -> Target:
    return Target(stack.replicas_of("gateway")[0].url, stack.data_dir, stack.mongo_url)


def _assert_secure(answer: Answer, cache: str = "no-store") -> None:
    headers = answer.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"] or (
        headers["Content-Security-Policy"] == PAGE_POLICY
    )
    assert headers["Cache-Control"] == cache
    # gunicorn always names itself, without a version; nothing else may add a second one.
    assert headers.get_all("Server", []) in ([], ["gunicorn"])
    assert "X-Powered-By" not in headers
    assert "Strict-Transport-Security" not in headers  # plain HTTP here: see README
    assert "Access-Control-Allow-Origin" not in headers


def test_it_sends_the_headers_on_every_kind_of_answer(stack):
    gateway = _target(stack)
    me = new_user(gateway)
    too_big = b'{"a": "' + b"x" * (70 * 1024) + b'"}'
    answers = {
        "proxied 200": gateway.send("GET", f"/users/{me.user_id}", me.token),
        "proxied 201": gateway.send(
            "POST",
            "/users/register",
            body={"username": "h" + me.username, "email": "h" + me.email, "password": "p" * 8},
        ),
        "proxied 400": gateway.send(
            "POST", "/users/register", body={"username": "x1", "email": "bad", "password": "p"}
        ),
        "saga 201": gateway.send(
            "POST",
            f"/users/{me.user_id}/goals",
            me.token,
            {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"},
        ),
        "401": gateway.send("GET", f"/users/{me.user_id}"),
        "403": gateway.send("GET", "/users/someone-else", me.token),
        "404": gateway.send("GET", "/no/such/path"),
        "405": gateway.send("DELETE", "/status"),
        "413": gateway.send("POST", "/users/register", raw=too_big),
        "ws 401": gateway.send("GET", "/ws?token=nope", headers=UPGRADE),
        "status": gateway.send("GET", "/status"),
        "ready": gateway.send("GET", "/status/ready"),
    }
    statuses = {name: answer.status for name, answer in answers.items()}
    assert statuses == {
        "proxied 200": 200,
        "proxied 201": 201,
        "proxied 400": 400,
        "saga 201": 201,
        "401": 401,
        "403": 403,
        "404": 404,
        "405": 405,
        "413": 413,
        "ws 401": 401,
        "status": 200,
        "ready": 200,
    }
    for name, answer in answers.items():
        try:
            _assert_secure(answer)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {dict(answer.headers)}") from exc


def test_it_sends_them_on_429_and_503_too(stack):
    gateway = _target(stack)
    me = new_user(gateway)
    login = {"email": me.email, "password": "wrong-password"}
    guesses = [gateway.send("POST", "/users/login", body=login) for _ in range(3)]
    assert guesses[-1].status == 429
    _assert_secure(guesses[-1])
    stack.kill("activity_service-1")
    try:
        gone = gateway.send("GET", f"/users/{me.user_id}/statistics", me.token)
        assert gone.status == 503
        _assert_secure(gone)
    finally:
        stack.start_replica(stack.replicas_of("activity_service")[0])
        stack.wait_ready(stack.replicas_of("activity_service")[0])


def test_it_keeps_the_pages_own_content_security_policy(stack):
    gateway = _target(stack)
    live, docs = gateway.send("GET", "/live"), gateway.send("GET", "/docs")
    uploads = gateway.send("GET", "/import")
    spec = gateway.send("GET", "/openapi.json")
    assert live.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert uploads.headers["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert b"script-src 'sha256-" in uploads.body
    assert docs.headers["Content-Security-Policy"] == PAGE_POLICY
    for page in (live, uploads, docs, spec):
        _assert_secure(page, cache="no-cache")
    assert spec.headers["ETag"]


def test_it_sends_no_cors_headers_unless_origins_are_configured(stack):
    preflight = _preflight(_target(stack), ALLOWED)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Methods" not in preflight.headers


def test_it_answers_a_preflight_from_an_allowed_origin(cors_gateway):
    preflight = _preflight(cors_gateway, ALLOWED)
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = preflight.headers["Access-Control-Allow-Methods"]
    assert {"GET", "POST", "PATCH", "DELETE"} <= {m.strip() for m in methods.split(",")}
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    for name in ("authorization", "content-type", "idempotency-key", "x-request-id"):
        assert name in allowed
    assert "x-not-allowed" not in allowed
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    me = new_user(cors_gateway)
    read = cors_gateway.send("GET", f"/users/{me.user_id}", me.token, headers={"Origin": ALLOWED})
    assert read.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in read.headers["Vary"]
    assert "X-Request-ID" in read.headers["Access-Control-Expose-Headers"]
    assert read.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize("origin", ["https://evil.example.com", "null", f"{ALLOWED}.evil.com"])
def test_it_gives_other_origins_no_cors_grant(cors_gateway, origin):
    preflight = _preflight(cors_gateway, origin)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    read = cors_gateway.send("GET", "/status", headers={"Origin": origin})
    assert "Access-Control-Allow-Origin" not in read.headers


def _preflight(target: Target, origin: str) -> Answer:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": (
            "Authorization, Content-Type, Idempotency-Key, X-Request-ID, X-Not-Allowed"
        ),
    }
    return target.send("OPTIONS", "/users/someone/goals/g1", headers=headers)
