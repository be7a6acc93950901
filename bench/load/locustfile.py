"""The mixed load profile: locust users that each issue one kind of operation at a fixed pace.

Every user runs on an absolute schedule (``first_at``, ``first_at + pacing``, …), not "wait
after the answer": a slow answer does not delay the next arrival (a late user starts its next
operation at once and catches up), so the offered rate stays what the runner planned unless
answers take longer than the pacing itself. That is an open loop; a closed loop would slow its
own offered rate down exactly when the system is saturating and hide the knee.

Operations (the requests each one makes):

- ``Registration``: ``POST /users/register`` (1);
- ``Login``: ``POST /users/login`` with a seeded account (1);
- ``Workout``: ``POST /workouts/start`` then ``POST /workouts/{id}/end`` (2), on an account
  lent to that one operation, since a user has at most one active workout;
- ``StatisticsRead``: ``GET /users/{id}/statistics`` (1);
- ``GoalSaga``: ``POST /users/{id}/goals`` through the gateway, a create_goal saga (1);
- ``LiveSession``: two sockets on the two gateways: connect, create, join, a chat message and an
  exercise update fanned out across gateways, both leave (8 timed steps).

Outcomes (ok / clear error / other, as ``bench.harness.results`` counts them), failure reasons and
the acknowledged writes are kept in :data:`RECORD` (read by ``bench.load_knee``); every request is
also reported to locust (its ``request`` event), so locust's own statistics see it too.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import gevent
from gevent.queue import Queue
from locust import FastHttpUser, task

from bench.harness.seeding import PASSWORD, Account, counting_start
from fitness.workouts import GOAL_TYPES

WORKOUT_TYPES = ("running", "cycling", "yoga", "rowing", "walking")


@dataclass
class Write:
    """A write the system acknowledged, to be read back after the run."""

    kind: str  # registration | workout | goal
    step: int
    user_id: str
    item_id: str
    saga_id: str = ""
    status: int = 0


@dataclass
class Record:
    """What every request did, and what the runner configured for the current step."""

    gateways: list[str] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    exclusive: int = 0  # accounts[:exclusive] are lent to one workout at a time
    step: int = 0
    epoch: float = 0.0  # every user's first operation falls in [epoch, epoch + pacing)
    pacing: float = 10.0
    samples: list[tuple[int, str, float, float, str]] = field(default_factory=list)
    operations: list[tuple[int, str, float]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    errors: dict[tuple[int, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    free: Queue = field(default_factory=Queue)

    def new_step(self, step: int, epoch: float, pacing: float) -> None:
        self.step, self.epoch, self.pacing = step, epoch, pacing

    def lend(self, accounts: list[Account], exclusive: int) -> None:
        """Keep ``accounts``; the first ``exclusive`` are lent to one workout at a time."""
        self.accounts, self.exclusive = accounts, exclusive
        for account in accounts[:exclusive]:
            self.free.put(account)

    def shared(self, count: int = 1) -> list[Account]:
        return random.sample(self.accounts[self.exclusive :], count)


RECORD = Record()


def outcome(status: int, body: str) -> str:
    """ok (2xx), clear (4xx/503 with a JSON error body) or other (the rest, timeouts too)."""
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500 or status == 503:
        try:
            error = json.loads(body).get("error")
        except (ValueError, AttributeError):
            return "other"
        return "clear" if isinstance(error, dict) and error.get("code") else "other"
    return "other"


class Scheduled:
    """Mixed into a locust user: operations fall on a fixed grid, whatever the latency."""

    kind = ""

    def on_start(self) -> None:
        self.next_at = RECORD.epoch + random.uniform(0, RECORD.pacing)
        gevent.sleep(max(0.0, self.next_at - time.time()))

    def wait_time(self) -> float:
        self.next_at += RECORD.pacing
        return max(0.0, self.next_at - time.time())

    def begin(self) -> None:
        """Count one operation offered now (the offered rate is counted, not assumed)."""
        RECORD.operations.append((RECORD.step, self.kind, time.time()))

    def note(
        self, name: str, started: float, result: str, detail: str | None = None, why: str = ""
    ) -> None:
        """Record one timed request; with ``detail`` also report it to locust (sockets)."""
        elapsed = time.time() - started
        RECORD.samples.append((RECORD.step, name, started, elapsed, result))
        if result != "ok":
            RECORD.errors[RECORD.step, name][why or (detail or "")[:80]] += 1
        if detail is None:
            return  # an HTTP request: locust's client reports it
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=elapsed * 1000,
            response_length=0,
            exception=None if result == "ok" else Exception(f"{result}: {detail[:200]}"),
            context={"outcome": result},
        )


@dataclass
class Answer:
    result: str  # ok | clear | other
    status: int
    body: dict
    saga_id: str = ""


class Api(Scheduled, FastHttpUser):
    """A scheduled user calling the HTTP API through one of the gateways."""

    abstract = True
    network_timeout = 15.0
    connection_timeout = 5.0
    host = "http://127.0.0.1"  # replaced by a gateway's address below

    def __init__(self, environment):
        super().__init__(environment)
        self.client.base_url = random.choice(RECORD.gateways)

    def call(self, method: str, path: str, name: str, account: Account | None = None, **kw):
        """Make one request (recorded) and return what came back."""
        headers = {**kw.pop("headers", {}), **(account.auth if account is not None else {})}
        started = time.time()
        with self.client.request(
            method, path, headers=headers, name=name, catch_response=True, **kw
        ) as response:
            status, text = response.status_code or 0, response.text or ""
            result = outcome(status, text)
            why = _why(status, text, getattr(response, "error", None))
            self.note(name, started, result, why=why)
            if result == "ok":
                response.success()
            else:
                response.failure(f"{result}: {why}")
            saga_id = response.headers.get("X-Saga-ID", "") if response.headers else ""
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            body = {}
        return Answer(result, status, body if isinstance(body, dict) else {}, saga_id)


def _why(status: int, text: str, error) -> str:
    """A short reason for a failed request: the status and the error code, or the exception."""
    if not status:
        return type(error).__name__ if error else "no answer"
    try:
        return f"{status} {json.loads(text)['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return f"{status} {text[:40]!r}"


def _acknowledge(write: Write) -> None:
    RECORD.writes.append(write)


class Registration(Api):
    abstract = True
    kind = "registration"

    @task
    def register(self) -> None:
        self.begin()
        name = "ld" + uuid.uuid4().hex[:14]
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        answer = self.call("POST", "/users/register", "POST /users/register", json=body)
        if answer.result == "ok":
            user_id = answer.body["user_id"]
            _acknowledge(Write("registration", RECORD.step, user_id, user_id))


class Login(Api):
    abstract = True
    kind = "login"

    @task
    def login(self) -> None:
        self.begin()
        (account,) = RECORD.shared()
        body = {"email": account.email, "password": PASSWORD}
        self.call("POST", "/users/login", "POST /users/login", json=body)


class Workout(Api):
    abstract = True
    kind = "workout"

    @task
    def workout(self) -> None:
        """Start and end a workout on an account no other workout uses meanwhile (a user has
        at most one active workout). Accounts run out only when ``exclusive`` workouts are in
        flight at once; the wait then shows as a lower offered rate."""
        self.begin()
        self.account = RECORD.free.get()
        try:
            self._workout(self.account)
        finally:
            RECORD.free.put(self.account)

    def _workout(self, me: Account) -> None:
        body = {
            "user_id": me.user_id,
            "workout_type": random.choice(WORKOUT_TYPES),
            "start_time": counting_start(),
        }
        key = {"Idempotency-Key": uuid.uuid4().hex}
        answer = self.call(
            "POST", "/workouts/start", "POST /workouts/start", me, json=body, headers=key
        )
        if answer.result == "ok":
            self.end(answer.body["session_id"])
        elif answer.status == 409:
            # A workout left open when the previous step stopped its users mid-operation.
            self.end(answer.body["error"].get("fields", {}).get("active_session_id", ""))

    def end(self, session_id: str) -> None:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        path = f"/workouts/{session_id}/end"
        answer = self.call(
            "POST", path, "POST /workouts/{id}/end", self.account, json={}, headers=key
        )
        if answer.result == "ok" and answer.body.get("status") == "ended":
            write = Write("workout", RECORD.step, self.account.user_id, session_id)
            write.status = answer.status
            _acknowledge(write)


class StatisticsRead(Api):
    abstract = True
    kind = "statistics"

    @task
    def statistics(self) -> None:
        self.begin()
        (account,) = RECORD.shared()
        path = f"/users/{account.user_id}/statistics"
        self.call("GET", path, "GET /users/{id}/statistics", account)


class GoalSaga(Api):
    abstract = True
    kind = "goal"

    @task
    def create_goal(self) -> None:
        self.begin()
        (account,) = RECORD.shared()
        body = {
            "goal_type": random.choice(GOAL_TYPES),
            "target_value": random.randint(1, 500),
            "target_date": "2099-12-31",
        }
        key = {"Idempotency-Key": uuid.uuid4().hex}
        path = f"/users/{account.user_id}/goals"
        answer = self.call("POST", path, "POST /users/{id}/goals", account, json=body, headers=key)
        if answer.result == "ok":
            goal_id = answer.body.get("goal_id", "")
            write = Write("goal", RECORD.step, account.user_id, goal_id, answer.saga_id)
            write.status = answer.status
            _acknowledge(write)
