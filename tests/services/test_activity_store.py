"""The activity store is a real MongoDB-protocol server: indexes used, writes kept through failures.

Each test here runs its own stack (FerretDB over PostgreSQL, two replicas per service), because
they fill the store or kill its processes.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from activity_service.service import sessions_of, unreported
from activity_service.store import ActivityStore
from activity_service.totals import Totals
from tests.support.client import Api, minutes_ago
from tests.support.stack import activity_db, start_stack

# Enough documents of other users that a sequential scan would cost more than an index.
OTHER_SESSIONS = 3000


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    """A stack of its own: these tests fill the store and kill its processes."""
    running = start_stack(tmp_path_factory.mktemp("store"))
    yield running
    running.stop()


def _plan_nodes(plan) -> Iterator[str]:
    """Yield every plan node's kind, from a PostgreSQL (FerretDB) or MongoDB explain answer."""
    if isinstance(plan, dict):
        for key in ("Node Type", "stage"):
            if isinstance(plan.get(key), str):
                yield plan[key]
        for value in plan.values():
            yield from _plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _plan_nodes(value)


def _uses_index(explained: dict) -> bool:
    nodes = list(_plan_nodes(explained))
    assert nodes, f"no plan in {explained}"
    return any("Index" in node or node == "IXSCAN" for node in nodes)


def _seed_other_users(stack) -> None:
    now = dt.datetime.now(dt.UTC)
    docs = [
        {
            "_id": str(uuid.uuid4()),
            "user_id": f"other-{n % 300}",
            "workout_type": "running",
            "status": "ended",
            "start_time": now - dt.timedelta(hours=n),
            "end_time": now - dt.timedelta(hours=n) + dt.timedelta(minutes=30),
            "duration": 30.0,
            "calories_burned": 300.0,
            "weight_kg": 70.0,
            "weight_source": "profile",
            "progress_reported": True,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(OTHER_SESSIONS)
    ]
    activity_db(stack)["sessions"].insert_many(docs)


def test_it_answers_the_services_queries_from_indexes(own_stack):
    api = Api(own_stack)
    user_id, token = api.new_user()
    api.end(api.start(user_id, token)["session_id"], token)
    _seed_other_users(own_stack)
    db = activity_db(own_stack)
    session_id = db["sessions"].find_one(sessions_of(user_id))["_id"]

    explained = {
        "session by id": db.command("explain", {"find": "sessions", "filter": {"_id": session_id}}),
        "sessions of a user": db.command(
            "explain", {"find": "sessions", "filter": sessions_of(user_id)}
        ),
        "statistics (a user's totals)": db.command(
            "explain", {"find": "user_totals", "filter": {"_id": user_id}}
        ),
        "the outbox": db.command(
            "explain", {"find": "sessions", "filter": unreported(dt.datetime.now(dt.UTC))}
        ),
        "goals of a user": db.command(
            "explain", {"find": "goals", "filter": {"user_id": user_id, "status": "active"}}
        ),
    }

    scans = [name for name, answer in explained.items() if not _uses_index(answer)]
    assert scans == [], f"read without an index: {scans}"
    stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 1


def test_the_plan_check_tells_a_scan_from_an_index(own_stack):
    db = activity_db(own_stack)
    # No index on workout_type: this must read like a scan, or the test above proves nothing.
    explained = db.command("explain", {"find": "sessions", "filter": {"workout_type": "rowing"}})
    assert not _uses_index(explained)


class _Traffic:
    """Clients starting and ending workouts on both activity replicas until stopped.

    Records every answer's status, and every write the service acknowledged.
    """

    def __init__(self, stack, users: int = 4):
        self.clients = [Api(stack, 0, 0), Api(stack, 1, 1)]
        self.users = [self.clients[0].new_user() for _ in range(users)]
        self.statuses: Counter[int | str] = Counter()
        self.started: dict[str, str] = {}  # session id -> user id, acknowledged
        self.ended: dict[str, dict] = {}  # session id -> the acknowledged end
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(users)
        ]

    def __enter__(self) -> _Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, n: int) -> None:
        user_id, token = self.users[n]
        while not self._stop.is_set():
            self._one_workout(user_id, token)

    def _one_workout(self, user_id: str, token: str) -> None:
        """Start and end a workout, sending each again until answered, as a careful client does.

        The start carries an Idempotency-Key, so a start that was stored but not answered
        (a replica or the store died in between) is found again, not refused as a second one.
        """
        key = {"Idempotency-Key": uuid.uuid4().hex}
        body = {"user_id": user_id, "workout_type": "rowing", "start_time": minutes_ago(10)}
        started = self._until_ok(
            lambda api: api.post(f"{api.activity_url}/workouts/start", body, token, headers=key),
            201,
        )
        if started is None:
            return
        session_id = started["session_id"]
        self.started[session_id] = user_id
        ended = self._until_ok(
            lambda api: api.post(f"{api.activity_url}/workouts/{session_id}/end", {}, token), 200
        )
        if ended is not None:
            self.ended[session_id] = ended

    def _until_ok(self, send, status: int) -> dict | None:
        """Send until answered with ``status``, moving to the next replica after each failure."""
        turn = random.randrange(len(self.clients))
        while not self._stop.is_set():
            try:
                response = send(self.clients[turn % len(self.clients)])
            except requests.RequestException as exc:
                self.statuses[type(exc).__name__] += 1
            else:
                self.statuses[response.status_code] += 1
                if response.status_code == status:
                    return response.json()
            turn += 1
            time.sleep(0.05)
        return None

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ended) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.ended) >= count, f"only {len(self.ended)} workouts ended: {self.statuses}"


def _check_nothing_lost(stack, traffic: _Traffic) -> None:
    sessions = ActivityStore(stack.mongo_url).sessions
    stored = {doc["_id"]: doc for doc in sessions.find({"_id": {"$in": list(traffic.started)}})}
    missing = sorted(set(traffic.started) - set(stored))
    assert missing == [], f"acknowledged starts lost: {missing}"
    for session_id, answer in traffic.ended.items():
        doc = stored[session_id]
        assert doc["status"] == "ended", session_id
        assert doc["duration"] == answer["duration"], session_id


def test_a_replica_killed_mid_write_loses_no_acknowledged_write(own_stack):
    with _Traffic(own_stack) as traffic:
        traffic.wait_for(20)
        own_stack.kill("activity_service-1")
        traffic.wait_for(len(traffic.ended) + 20)
        own_stack.start_replica(own_stack.replicas_of("activity_service")[0])
        own_stack.wait_ready(own_stack.replicas_of("activity_service")[0])
        traffic.wait_for(len(traffic.ended) + 10)

    assert traffic.statuses["ConnectionError"] > 0, "the kill went unnoticed"
    assert traffic.statuses[500] == 0, traffic.statuses
    _check_nothing_lost(own_stack, traffic)


@pytest.mark.parametrize("process", ["docstore", "docstore-pg"])
def test_a_store_restart_under_traffic_costs_only_clear_503s(own_stack, process):
    (replica,) = [r for r in own_stack.replicas if r.name == process]
    with _Traffic(own_stack) as traffic:
        traffic.wait_for(10)
        own_stack.kill(process)
        time.sleep(3)
        own_stack.start_replica(replica)
        own_stack.wait_ready(replica)
        traffic.wait_for(len(traffic.ended) + 20)

    unexpected = {k: v for k, v in traffic.statuses.items() if k not in (200, 201, 503)}
    assert unexpected == {}, traffic.statuses
    assert traffic.statuses[503] > 0, f"the outage went unnoticed: {traffic.statuses}"
    _check_nothing_lost(own_stack, traffic)


def test_it_adds_each_session_to_its_owners_totals_once(own_stack):
    store = ActivityStore(own_stack.mongo_url)
    totals = Totals(store)
    user_id = f"totals-{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC)
    history = [_ended(user_id, now, minutes=10, reported=True) for _ in range(2)]
    late = _ended(user_id, now, minutes=30, reported=False)  # ended, its report still due
    store.sessions.insert_many([*history, late])

    # Reports of one session arriving at once (two replicas, the outbox) add it once.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: totals.add(late), range(8)))
    totals.add(late)

    assert totals.read(user_id) == {"workouts": 3, "duration": 50.0, "calories": 300.0}
    totals.settle(late)
    assert store.user_totals.find_one({"_id": user_id})["counting"] == []


class FirstReadInTheGap:
    """The users' totals collection, with another request's first read of the user's statistics
    (which builds their totals) landing just after the first update found no totals to add to."""

    def __init__(self, collection, first_read):
        self.collection, self.first_read, self.interrupted = collection, first_read, False

    def update_one(self, *args, **kwargs):
        result = self.collection.update_one(*args, **kwargs)
        if not self.interrupted:
            self.interrupted = True
            self.first_read()
        return result

    def __getattr__(self, name: str):
        return getattr(self.collection, name)


def test_a_report_that_races_the_users_first_read_still_counts(own_stack):
    """Seen in a live group workout: a participant's statistics were read (and so built) while
    their workout was being added, and the workout was never counted."""
    store = ActivityStore(own_stack.mongo_url)
    user_id = f"race-{uuid.uuid4().hex}"
    session = _ended(user_id, dt.datetime.now(dt.UTC), minutes=20, reported=False)
    store.sessions.insert_one(session)
    racing = FirstReadInTheGap(store.user_totals, lambda: Totals(store).read(user_id))

    class RacedStore(ActivityStore):
        user_totals = racing

    Totals(RacedStore(own_stack.mongo_url)).add(session)

    assert racing.interrupted
    assert Totals(store).read(user_id) == {"workouts": 1, "duration": 20.0, "calories": 100.0}


def _ended(user_id: str, now: dt.datetime, minutes: int, reported: bool) -> dict:
    return {
        "_id": str(uuid.uuid4()),
        "user_id": user_id,
        "workout_type": "rowing",
        "status": "ended",
        "start_time": now - dt.timedelta(minutes=minutes),
        "end_time": now,
        "duration": float(minutes),
        "calories_burned": 100.0,
        "progress_reported": reported,
        "created_at": now,
        "updated_at": now,
    }
