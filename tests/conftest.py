"""Fixtures: the services as real processes on free ports, and a small client for their API."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devstack.stack import REDIS, STATE_REDIS, LocalStack, Replica, free_port
from fitness import mongo, mtls

TIMEOUT = 10
__all__ = ["free_port"]  # tests import it from here


def activity_db(stack: LocalStack):
    """Return the stack's activity database, through pymongo as the services reach it."""
    return _activity_db(stack.mongo_url)


def grpc_channel(stack: LocalStack, replica: Replica, role: str = "gateway"):
    """Open a channel to ``replica``'s gRPC server with the certificate of ``role``."""
    me = mtls.identity({"DATA_DIR": str(stack.data_dir)}, role)
    return mtls.channel(replica.grpc_target, me, replica.service)


@functools.cache
def _activity_db(url: str):
    # One client per store for the whole session: each client runs its own monitor threads.
    return mongo.connect(url, "activity")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the in-process unit tests (tests/unit) first: they take seconds and fail fast."""
    items.sort(key=lambda item: "unit" not in item.path.parent.parts[-1:])


def make_replicas(count: int = 2) -> list[Replica]:
    """Return ``count`` replicas of each service on free ports."""
    return [
        Replica(service, f"{service}-{n}", free_port(), free_port())
        for service in ("user_service", "activity_service")
        for n in range(1, count + 1)
    ]


def gateway_tier(gateways: int = 1, cache_nodes: int = 0) -> list[Replica]:
    """Return gateways on free ports with the state Redis they need (and cache servers)."""
    return [
        Replica(STATE_REDIS, "state-redis", free_port(), 0),
        *(Replica(REDIS, f"cache-redis-{n}", free_port(), 0) for n in range(1, cache_nodes + 1)),
        *(Replica("gateway", f"gateway-{n}", free_port(), 0) for n in range(1, gateways + 1)),
    ]


def start_stack(data_dir: Path, count: int = 2) -> LocalStack:
    """Start a stack of ``count`` replicas per service and a gateway in ``data_dir``.

    Goals are written through the gateway only (their saga keeps both services' copies in
    step); everything else a test may send to a replica directly.
    """
    replicas = [*make_replicas(count), *gateway_tier(1)]
    return launch(data_dir, replicas, {"FITNESS_LOG_LEVEL": "INFO"})


def launch(data_dir: Path, replicas: list[Replica], env: dict[str, str]) -> LocalStack:
    """Start ``replicas`` as a stack in ``data_dir``; stop what started if any one fails."""
    stack = LocalStack(data_dir, replicas, extra_env=env)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def running(data_dir: Path, replicas: list[Replica], env: dict[str, str]) -> Iterator[LocalStack]:
    """Run ``replicas`` as a stack for the ``with`` block, stopping it after."""
    stack = launch(data_dir, replicas, env)
    try:
        yield stack
    finally:
        stack.stop()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Api:
    """Calls one replica of each service, as a client of the public API would."""

    def __init__(self, stack: LocalStack, user_index: int = 0, activity_index: int = 0):
        users = [r for r in stack.replicas if r.service == "user_service"]
        activities = [r for r in stack.replicas if r.service == "activity_service"]
        gateways = [r for r in stack.replicas if r.service == "gateway"]
        self.user_url = users[user_index].url
        self.activity_url = activities[activity_index].url
        # Goal writes: only a gateway takes them (``create_goal``).
        self.gateway_url = gateways[0].url if gateways else None
        self.http = requests.Session()

    def post(self, url: str, body=None, token: str | None = None, **kwargs) -> requests.Response:
        headers = {**_auth(token), **kwargs.pop("headers", {})}
        return self.http.post(url, json=body, headers=headers, timeout=TIMEOUT, **kwargs)

    def get(self, url: str, token: str | None = None, **kwargs) -> requests.Response:
        return self.http.get(url, headers=_auth(token), timeout=TIMEOUT, **kwargs)

    def create_goal(self, user_id: str, token: str, **goal) -> dict:
        """Create a goal the one way there is, a gateway's saga; return it once both services
        have it (201), waiting out a saga that answered 202."""
        response = self.post(f"{self.gateway_url}/users/{user_id}/goals", goal, token)
        assert response.status_code in (201, 202), response.text
        if response.status_code == 201:
            return response.json()
        saga_url = f"{self.gateway_url}/sagas/{response.headers['X-Saga-ID']}"
        assert wait_until(
            lambda: self.get(saga_url, token).json()["state"] == "completed", timeout=30
        ), self.get(saga_url, token).text
        goal_id = self.get(saga_url, token).json()["goal_id"]
        return self.get(f"{self.gateway_url}/users/{user_id}/goals/{goal_id}", token).json()

    def register(self, **fields) -> dict:
        name = fields.pop("username", "u" + uuid.uuid4().hex[:10])
        body = {"username": name, "email": f"{name}@example.com", "password": "correct-horse"}
        body.update(fields)
        response = self.post(f"{self.user_url}/users/register", body)
        assert response.status_code == 201, response.text
        return {**response.json(), "password": body["password"]}

    def login(self, email: str, password: str = "correct-horse") -> str:
        response = self.post(f"{self.user_url}/users/login", {"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def new_user(self, **fields) -> tuple[str, str]:
        """Register and log in a fresh user; return (user_id, token)."""
        user = self.register(**fields)
        return user["user_id"], self.login(user["email"], user["password"])

    def start(self, user_id: str, token: str, workout_type: str = "running", **fields) -> dict:
        """Start a workout, by default 10 minutes ago: ended at once, it still counts.

        (One shorter than ``MIN_WORKOUT_MINUTES`` ends "discarded"; ``start_time=None`` starts
        it now.)
        """
        fields.setdefault("start_time", minutes_ago(10))
        body = {"user_id": user_id, "workout_type": workout_type, **fields}
        if body["start_time"] is None:
            del body["start_time"]
        response = self.post(f"{self.activity_url}/workouts/start", body, token)
        assert response.status_code == 201, response.text
        return response.json()

    def end(self, session_id: str, token: str, end_time: str | None = None) -> dict:
        body = {"end_time": end_time} if end_time else {}
        response = self.post(f"{self.activity_url}/workouts/{session_id}/end", body, token)
        assert response.status_code == 200, response.text
        return response.json()


class GatewayApi(Api):
    """The test client, pointed at a gateway for both services."""

    def __init__(self, stack: LocalStack, gateway_index: int = 0):
        super().__init__(stack)
        self.user_url = self.activity_url = stack.replicas_of("gateway")[gateway_index].url


def log_events(path: Path) -> list[dict]:
    """Return the JSON events of a process's log file."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def minutes_ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    """Two replicas of each service sharing one data directory, for the whole session."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture
def api(stack) -> Api:
    return Api(stack)


@pytest.fixture
def other_api(stack) -> Api:
    """A client of the other replica of each service."""
    return Api(stack, user_index=1, activity_index=1)
