"""The client the tests call the API with, as a user of the public API would."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import requests

from devstack.stack import LocalStack

TIMEOUT = 10


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


def minutes_ago(minutes: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
