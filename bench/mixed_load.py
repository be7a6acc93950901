"""A steady mixed load on the gateways that records what every client saw, for the fault suite.

Open loop: operations start at a fixed rate whatever earlier ones are doing (a slow gateway
does not slow the load down). The REST mix: registrations, logins, a workout (start, then end),
statistics and goal reads, and goal sagas. Every write carries an ``Idempotency-Key``, as the
README advises clients to. The client knows both gateways, as a client behind a load balancer
would: a connection the gateway refused (it is down) goes to the other one; anything else is
counted as the client saw it.

Live sessions (:mod:`mixed_live`): participants on both gateways chat, and reconnect to the other
gateway with ``last_seq`` when their socket drops.

Every acknowledged write is remembered and :meth:`MixedLoad.verify` reads it back after
recovery: registrations (log in), ended workouts, goals of completed sagas, sagas accepted with
202 (they must settle), live chat events acknowledged with a ``seq``.
"""

from __future__ import annotations

import collections
import itertools
import queue
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from urllib3.exceptions import NewConnectionError

from bench.harness.seeding import PASSWORD, Account, counting_start
from bench.mixed_live import LiveGroup

# Longer than anything the gateway may take (connect + read timeout for each of 3 attempts):
# an answer later than this is a hang.
CLIENT_TIMEOUT = 40.0
GOAL = {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"}
# Operation weights per 10 arrivals.
MIX = {"register": 1, "login": 1, "workout": 2, "statistics": 3, "goals": 1, "saga": 2}
TERMINAL = {"completed", "compensated", "failed"}


@dataclass
class Tally:
    """What clients saw, by outcome; ``reasons`` says what the failures were."""

    sent: int = 0
    succeeded: int = 0
    failed_clear: int = 0
    failed_other: int = 0
    reasons: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str, reason: str = "") -> None:
        with self.lock:
            self.sent += 1
            setattr(self, outcome, getattr(self, outcome) + 1)
            if reason:
                self.reasons[f"{outcome}: {reason}"] += 1


def judge(response: requests.Response | None, error: str = "") -> tuple[str, str]:
    """Return (outcome, reason): succeeded, failed_clear (4xx/503 JSON error) or failed_other."""
    if response is None:
        return "failed_other", error
    status = response.status_code
    if 200 <= status < 300:
        return "succeeded", ""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = ""
    if code and (400 <= status < 500 or status == 503):
        return "failed_clear", f"{status} {code}"
    return "failed_other", f"{status} {code or 'no JSON error'}"


class Client:
    """HTTP to either gateway; a refused connection (gateway down) goes to the other one."""

    def __init__(self, gateways: list[str]):
        self.gateways = gateways
        self.http = requests.Session()
        self._turn = itertools.count()

    def call(self, method: str, path: str, **kwargs) -> tuple[requests.Response | None, str]:
        first = next(self._turn)
        error = ""
        for n in range(len(self.gateways)):
            url = self.gateways[(first + n) % len(self.gateways)] + path
            try:
                return self.http.request(method, url, timeout=CLIENT_TIMEOUT, **kwargs), ""
            except requests.Timeout:
                return None, "hang (no answer within the client timeout)"
            except requests.ConnectionError as exc:
                error = f"connection: {_root(exc)}"
                if not _refused(exc):
                    return None, error
        return None, error


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (NewConnectionError, ConnectionRefusedError)):
            return True
        reason = getattr(seen, "reason", None)
        if isinstance(reason, NewConnectionError):
            return True
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = nested or seen.__context__
    return False


def _root(exc: BaseException) -> str:
    text = str(exc)
    for known in ("RemoteDisconnected", "Connection reset", "Connection aborted", "refused"):
        if known in text:
            return known
    return type(exc).__name__


class MixedLoad:
    """REST at ``rate`` operations/s plus live sessions, recording acknowledged writes."""

    def __init__(self, gateways: list[str], users: list[Account], rate: float, sessions: int):
        self.client = Client(gateways)
        self.users = users
        self.idle: queue.Queue[Account] = queue.Queue()  # users without a workout in progress
        for user in users:
            self.idle.put(user)
        self.rate = rate
        self.tally = Tally()
        self.registered: list[tuple[str, str]] = []  # (email, user_id)
        self.workouts: list[tuple[Account, str]] = []
        self.goals: list[tuple[Account, str]] = []
        self.sagas: list[tuple[Account, str]] = []  # accepted with 202, still running then
        self.live = LiveGroup(gateways, users[: sessions * 2], self.tally) if sessions else None
        self._stopped = threading.Event()
        self._pool = ThreadPoolExecutor(64, thread_name_prefix="load")
        self._ops = [op for op, weight in MIX.items() for _ in range(weight)]
        self._thread = threading.Thread(target=self._arrivals, daemon=True)

    def start(self) -> None:
        if self.live:
            self.live.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop new arrivals and wait for the ones running (each is bounded by its timeout)."""
        self._stopped.set()
        self._thread.join()
        self._pool.shutdown(wait=True)
        if self.live:
            self.live.stop()

    def _arrivals(self) -> None:
        interval, due = 1.0 / self.rate, time.monotonic()
        while not self._stopped.is_set():
            self._pool.submit(self._run, random.choice(self._ops))
            due += interval
            self._stopped.wait(max(0.0, due - time.monotonic()))

    def _run(self, op: str) -> None:
        try:
            getattr(self, f"_{op}")()
        except Exception as exc:  # a bug in the driver must show, not vanish in the pool
            self.tally.add("failed_other", f"driver error {type(exc).__name__}: {exc}")

    def _record(self, op: str, response, error: str = "") -> bool:
        outcome, reason = judge(response, error)
        self.tally.add(outcome, f"{op} {reason}" if reason else "")
        return outcome == "succeeded"

    def _register(self) -> None:
        name = "m" + uuid.uuid4().hex[:12]
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        response, error = self.client.call("POST", "/users/register", json=body, headers=_key())
        if self._record("register", response, error):
            self.registered.append((body["email"], response.json()["user_id"]))

    def _login(self) -> None:
        user = random.choice(self.users)
        body = {"email": user.email, "password": PASSWORD}
        self._record("login", *self.client.call("POST", "/users/login", json=body))

    def _statistics(self) -> None:
        user = random.choice(self.users)
        path = f"/users/{user.user_id}/statistics"
        self._record("statistics", *self.client.call("GET", path, headers=user.auth))

    def _goals(self) -> None:
        user = random.choice(self.users)
        path = f"/users/{user.user_id}/goals"
        self._record("goals", *self.client.call("GET", path, headers=user.auth))

    def _saga(self) -> None:
        user = random.choice(self.users)
        headers = {**user.auth, **_key()}
        path = f"/users/{user.user_id}/goals"
        response, error = self.client.call("POST", path, json=GOAL, headers=headers)
        if not self._record("saga", response, error):
            return
        if response.status_code == 201:
            self.goals.append((user, response.json()["goal_id"]))
        else:  # 202: accepted, still running
            self.sagas.append((user, response.headers["X-Saga-ID"]))

    def _workout(self) -> None:
        try:
            user = self.idle.get(timeout=1)
        except queue.Empty:
            return  # every user is busy: this arrival is skipped, not counted
        try:
            self._one_workout(user)
        finally:
            self.idle.put(user)

    def _one_workout(self, user: Account) -> None:
        body = {
            "user_id": user.user_id,
            "workout_type": random.choice(["running", "yoga"]),
            "start_time": counting_start(),
        }
        headers = {**user.auth, **_key()}
        response, error = self.client.call("POST", "/workouts/start", json=body, headers=headers)
        if not self._record("start", response, error):
            if judge(response, error)[0] == "failed_other":  # outcome unknown: ask again
                response = self._settle(lambda: self.client.call(
                    "POST", "/workouts/start", json=body, headers=headers), 201)  # fmt: skip
            if response is None or response.status_code != 201:
                return
        path = f"/workouts/{response.json()['session_id']}/end"
        end_headers = {**user.auth, **_key()}
        # Retried with the same key, so it cannot end twice; for up to 40 s, because a key whose
        # first request died with its gateway stays "in progress" (409) for a while.
        ended, error = self.client.call("POST", path, json={}, headers=end_headers)
        acknowledged = self._record("end", ended, error)
        if not acknowledged:
            end = lambda: self.client.call("POST", path, json={}, headers=end_headers)  # noqa: E731
            acknowledged = self._settle(end, 200) is not None
        if acknowledged:
            self.workouts.append((user, response.json()["session_id"]))

    @staticmethod
    def _settle(call, status: int, seconds: float = 40.0):
        """Repeat ``call`` (same Idempotency-Key) until it answers ``status``: a client that
        lost the answer finds out what happened. Housekeeping, not counted."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            response, _ = call()
            if response is not None and response.status_code == status:
                return response
            time.sleep(2)
        return None

    def verify(self, settle_seconds: float = 40.0) -> tuple[int, list[str]]:
        """Read back every acknowledged write; return (lost, notes)."""
        notes: list[str] = []
        unsettled, completed = self._settle_sagas(settle_seconds)  # adds completed goals
        lost = unsettled + self._lost_registrations() + self._lost_workouts() + self._lost_goals()
        if self.sagas:
            notes.append(f"{len(self.sagas)} sagas answered 202, {completed} completed later")
        if self.live:
            live_lost, live_notes = self.live.verify()
            lost += live_lost
            notes += live_notes
        return lost, notes

    def _check_all(self, checks) -> int:
        with ThreadPoolExecutor(8) as pool:
            return sum(1 for ok in pool.map(lambda check: check(), checks) if not ok)

    def _lost_registrations(self) -> int:
        def logs_in(email: str):
            body = {"email": email, "password": PASSWORD}
            return lambda: self._status("POST", "/users/login", json=body) == 200

        return self._check_all([logs_in(email) for email, _ in self.registered])

    def _lost_workouts(self) -> int:
        def ended(user: Account, session_id: str):
            def check() -> bool:
                response, _ = self.client.call("GET", f"/workouts/{session_id}", headers=user.auth)
                return response is not None and response.json().get("status") == "ended"

            return check

        return self._check_all([ended(user, sid) for user, sid in self.workouts])

    def _lost_goals(self) -> int:
        def exists(user: Account, goal_id: str):
            path = f"/users/{user.user_id}/goals/{goal_id}"
            return lambda: self._status("GET", path, headers=user.auth) == 200

        return self._check_all([exists(user, goal) for user, goal in self.goals])

    def _settle_sagas(self, seconds: float) -> tuple[int, int]:
        """Wait until every 202 saga is settled; return (not settled or gone, completed)."""
        deadline, waiting, completed = time.monotonic() + seconds, list(self.sagas), 0
        while waiting and time.monotonic() < deadline:
            still = []
            for user, saga_id in waiting:
                response, _ = self.client.call("GET", f"/sagas/{saga_id}", headers=user.auth)
                state = response.json().get("state") if response is not None else None
                if response is not None and response.status_code == 200 and state in TERMINAL:
                    completed += state == "completed"
                    if state == "completed":
                        self.goals.append((user, response.json()["goal_id"]))
                else:
                    still.append((user, saga_id))
            waiting = still
            if waiting:
                time.sleep(1)
        return len(waiting), completed

    def _status(self, method: str, path: str, **kwargs) -> int:
        response, _ = self.client.call(method, path, **kwargs)
        return response.status_code if response is not None else 0


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
