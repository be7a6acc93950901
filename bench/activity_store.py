"""Measure the activity service on its real store (FerretDB over PostgreSQL) as the store grows.

Starts a private stack (two replicas of each service, the local document store; free ports, a
temporary directory) and grows the sessions collection through ``--sizes`` by writing sessions
of other users straight into the store (as a busy club's history would be). The measured users
each have ``--own`` sessions of their own; every measurement below gets fresh users, so each
starts from the same history. At each size, on both activity replicas:

- p50/p99 of GET statistics, GET list (a page of 20), POST start and POST end;
- read after a foreign write: end a workout on replica 1, then at once read statistics on
  replica 2 (the case the embedded engine took 286 ms at 10k sessions, 4 s at 150k);
- throughput of a mixed activity load (start, end, statistics, list) for ``--seconds`` from
  ``--clients`` threads, sent to one replica, then spread over both.

At the largest size it also times the ETL's extract of every session (the ETL's own source).

    .venv/bin/python -m bench.activity_store                        # 10k, 100k, 1M
    .venv/bin/python -m bench.activity_store --sizes 10000,50000 --samples 50
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.harness.client import bearer
from bench.harness.seeding import counting_start, jwt_secret, new_accounts
from bench.harness.stats import p50_p99
from devstack.stack import LocalStack
from etl.sources import MongoSource, Watermark
from fitness import mongo
from tests.support.stack import make_replicas

INSERT_BATCH = 2_000
PAGE = 20


def make_stack(data_dir: Path) -> LocalStack:
    """Return two replicas of each service (and the document store) on free ports."""
    replicas = make_replicas(2)
    env = {"FITNESS_LOG_LEVEL": "WARNING", "FITNESS_ENV": "development", "FITNESS_MONGO_URL": ""}
    return LocalStack(data_dir, replicas, extra_env=env)


def session_doc(n: int, user_id: str, now: dt.datetime) -> dict:
    """Return an ended session, as the service stores one."""
    start = now - dt.timedelta(minutes=10 * n + 60)
    minutes = 20 + n % 60
    return {
        "_id": str(uuid.uuid4()),
        "user_id": user_id,
        "workout_type": "running",
        "status": "ended",
        "start_time": start,
        "end_time": start + dt.timedelta(minutes=minutes),
        "duration": float(minutes),
        "calories_burned": 9.8 * 70 * minutes / 60,
        "weight_kg": 70.0,
        "weight_source": "profile",
        "progress_reported": True,
        "created_at": start,
        "updated_at": start,
    }


def grow(db, have: int, want: int, users: int) -> float:
    """Insert sessions of ``users`` other users until the collection holds ``want``."""
    now = dt.datetime.now(dt.UTC)
    began = time.perf_counter()

    def insert(first: int) -> None:
        count = min(INSERT_BATCH, want - first)
        db["sessions"].insert_many(
            [session_doc(n, f"club-{n % users}", now) for n in range(first, first + count)],
            ordered=False,
        )

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(insert, range(have, want, INSERT_BATCH)))
    return (want - have) / (time.perf_counter() - began)


class Bench:
    """The stack's two activity replicas, and users with tokens to call them as."""

    def __init__(self, stack: LocalStack, own: int):
        self.stack = stack
        self.own = own
        self.urls = [r.url for r in stack.replicas_of("activity_service")]
        self.secret = jwt_secret(stack)
        self.db = mongo.connect(stack.mongo_url, "activity")
        self.tokens: dict[str, str] = {}
        self.users: list[str] = []
        self.local = threading.local()

    def fresh_users(self, count: int = 8) -> None:
        """Measure as ``count`` new users, each with ``own`` ended sessions already."""
        user_url = self.stack.replicas_of("user_service")[0].url
        accounts = new_accounts(user_url, count, self.secret)
        self.users = [account.user_id for account in accounts]
        self.tokens.update({account.user_id: account.token for account in accounts})
        now = dt.datetime.now(dt.UTC)
        history = [session_doc(n, user, now) for user in self.users for n in range(self.own)]
        self.db["sessions"].insert_many(history)

    @property
    def http(self) -> requests.Session:
        if not hasattr(self.local, "http"):
            self.local.http = requests.Session()
        return self.local.http

    def call(
        self, method: str, url: str, user: str, body: dict | None = None
    ) -> tuple[float, dict]:
        """Send one request; return its latency in ms and its answer (raise unless 2xx)."""
        headers = bearer(self.tokens[user])
        began = time.perf_counter()
        response = self.http.request(method, url, json=body, headers=headers, timeout=30)
        took = (time.perf_counter() - began) * 1000
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
        return took, response.json()

    def start(self, replica: int, user: str) -> tuple[float, str]:
        body = {"user_id": user, "workout_type": "running", "start_time": counting_start()}
        took, answer = self.call("POST", f"{self.urls[replica]}/workouts/start", user, body)
        return took, answer["session_id"]

    def end(self, replica: int, user: str, session_id: str) -> float:
        return self.call("POST", f"{self.urls[replica]}/workouts/{session_id}/end", user, {})[0]

    def statistics(self, replica: int, user: str) -> float:
        return self.call("GET", f"{self.urls[replica]}/users/{user}/statistics", user)[0]

    def listing(self, replica: int, user: str) -> float:
        url = f"{self.urls[replica]}/users/{user}/workouts?limit={PAGE}"
        return self.call("GET", url, user)[0]


def latencies(bench: Bench, samples: int) -> dict[str, list[float]]:
    """Time each operation ``samples`` times per replica, and reads after foreign writes."""
    bench.fresh_users()
    found: dict[str, list[float]] = {}
    users = itertools.cycle(bench.users)
    for _, replica in itertools.product(range(samples), (0, 1)):
        user = next(users)
        found.setdefault(f"statistics r{replica + 1}", []).append(bench.statistics(replica, user))
        found.setdefault(f"list r{replica + 1}", []).append(bench.listing(replica, user))
        took, session_id = bench.start(replica, user)
        found.setdefault(f"start r{replica + 1}", []).append(took)
        found.setdefault(f"end r{replica + 1}", []).append(bench.end(replica, user, session_id))
        # Read after a foreign write: ended on one replica, read at once on the other.
        other = 1 - replica
        _, session_id = bench.start(replica, user)
        bench.end(replica, user, session_id)
        found.setdefault("read after foreign write", []).append(bench.statistics(other, user))
    return found


def throughput(bench: Bench, replicas: tuple[int, ...], clients: int, seconds: float) -> float:
    """Run the mixed load against ``replicas`` for ``seconds``; return operations per second."""
    bench.fresh_users()
    deadline = time.monotonic() + seconds
    counts = [0] * clients

    def client(n: int) -> None:
        user = bench.users[n % len(bench.users)]
        for turn in itertools.count(n):
            if time.monotonic() >= deadline:
                return
            replica = replicas[turn % len(replicas)]
            _, session_id = bench.start(replica, user)
            bench.statistics(replica, user)
            bench.listing(replica, user)
            bench.end(replica, user, session_id)
            counts[n] += 4

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return sum(counts) / seconds


def extract_rate(stack: LocalStack) -> tuple[int, float]:
    """Read every session through the ETL's own source; return (rows, rows per second)."""
    db = mongo.connect(stack.mongo_url, "activity", socketTimeoutMS=3_600_000)
    began, rows = time.perf_counter(), 0
    for batch in MongoSource("sessions", db, 10_000).batches(Watermark(), dt.datetime.now(dt.UTC)):
        rows += len(batch.rows)
    return rows, rows / (time.perf_counter() - began)


def report(size: int, found: dict[str, list[float]], rates: dict[str, float]) -> None:
    print(f"\n{size:,} stored sessions of other users")
    print(f"  {'operation':<26} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in found.items():
        p50, p99 = p50_p99(values)
        print(f"  {name:<26} {p50:>8.1f} {p99:>8.1f}")
    for name, rate in rates.items():
        print(f"  mixed load, {name:<14} {rate:>8.0f} ops/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=100, help="per operation and replica")
    parser.add_argument("--own", type=int, default=50, help="sessions of each measured user")
    parser.add_argument("--club", type=int, default=10_000, help="other users in the store")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the stack on the way out
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="activity-store-") as tmp:
        stack = make_stack(Path(tmp))
        stack.start()
        try:
            run(stack, args, sizes)
        finally:
            stack.stop()


def run(stack: LocalStack, args: argparse.Namespace, sizes: list[int]) -> None:
    db = mongo.connect(stack.mongo_url, "activity")
    bench = Bench(stack, args.own)
    have = 0  # FerretDB counts a collection by reading all of it: count here instead
    for size in sizes:
        if have < size:
            rate = grow(db, have, size, args.club)
            print(f"\n(grew the store to {size:,} sessions at {rate:,.0f} inserts/s)")
            have = size
        found = latencies(bench, args.samples)
        rates = {
            "1 replica": throughput(bench, (0,), args.clients, args.seconds),
            "2 replicas": throughput(bench, (0, 1), args.clients, args.seconds),
        }
        report(size, found, rates)
    rows, rate = extract_rate(stack)
    print(f"\nETL extract (etl.sources.MongoSource) of {rows:,} sessions: {rate:,.0f} rows/s")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
