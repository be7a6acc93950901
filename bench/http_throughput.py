"""Measure HTTP throughput and latency of a read-heavy mix against one replica of each service.

Starts a private stack (one user_service and one activity_service replica, embedded stores in a
temporary data directory, free ports), seeds one user with goals and workouts, then runs
``--threads`` client threads for ``--seconds``. Each thread keeps one ``requests.Session`` (so
connections are reused) and cycles through the mix below. Run from the repository root:

    .venv/bin/python bench/http_throughput.py --seconds 10 --threads 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.stack import LocalStack, Replica, free_ports
from fitness import mtls
from fitness.rpc import ServiceClient
from fitness.v1 import user_pb2, user_pb2_grpc

REQUEST_TIMEOUT_SECONDS = 10.0
SEED_WORKOUTS = ("running", "cycling", "yoga")


@dataclass
class Target:
    """One request of the mix."""

    label: str
    url: str
    auth: bool = True


@dataclass
class Samples:
    """Latencies (seconds) and error counts per request label, merged from every thread."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def merge(self, latencies: dict[str, list[float]], errors: dict[str, int]) -> None:
        """Add one thread's results."""
        with self.lock:
            for label, values in latencies.items():
                self.latencies[label].extend(values)
            for label, count in errors.items():
                self.errors[label] += count


def make_stack(data_dir: Path, workers: int, server_threads: int) -> LocalStack:
    """Return a stack of one replica per service on free ports."""
    user_http, user_grpc, activity_http, activity_grpc = free_ports(4)
    replicas = [
        Replica("user_service", "user_service-1", user_http, user_grpc),
        Replica("activity_service", "activity_service-1", activity_http, activity_grpc),
    ]
    env = {"FITNESS_WORKERS": str(workers), "FITNESS_THREADS": str(server_threads)}
    # The stack's own stores in the temporary directory, whatever the caller's shell has set.
    env.update(FITNESS_DATABASE_URL="", FITNESS_MONGO_URL="", FITNESS_ENV="development")
    return LocalStack(data_dir, replicas=replicas, extra_env=env)


def _post(url: str, body: dict, token: str = "") -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.post(url, json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json()


def seed(stack: LocalStack) -> tuple[str, str]:
    """Register and log in a user, add goals and finished workouts; return (user id, token)."""
    user_url, activity_url = (stack.replicas_of(s)[0].url for s in SERVICES)
    credentials = {"email": "bench@example.com", "password": "bench-password-1"}
    _post(f"{user_url}/users/register", {"username": "bench", "weight_kg": 70.0, **credentials})
    login = _post(f"{user_url}/users/login", credentials)
    user_id, token = login["user_id"], login["token"]
    seed_goals(stack, user_id)
    for workout_type in SEED_WORKOUTS:
        body = {"user_id": user_id, "workout_type": workout_type, "start_time": counting_start()}
        session = _post(f"{activity_url}/workouts/start", body, token)
        _post(f"{activity_url}/workouts/{session['session_id']}/end", {}, token)
    return user_id, token


SERVICES = ("user_service", "activity_service")


def seed_goals(stack: LocalStack, user_id: str) -> None:
    """Give the user three goals the way a gateway's saga does: over gRPC, as the gateway.

    Only a gateway takes goal writes from clients, and a bench stack may have none; the
    activity service's copy of the goals is not needed by what the benches read.
    """
    settings = {"DATA_DIR": str(stack.data_dir), "TLS_DIR": stack.env().get("FITNESS_TLS_DIR")}
    targets = [f"127.0.0.1:{r.grpc_port}" for r in stack.replicas_of("user_service")]
    users = ServiceClient(
        targets,
        user_pb2_grpc.UserServiceStub,
        10.0,
        mtls.identity(settings, "gateway"),
        "user_service",
    )
    target_date = time.strftime("%Y-12-31", time.gmtime())
    try:
        for goal_type in ("workout_count", "active_minutes", "calories_burned"):
            step = user_pb2.StepRef(saga_id=f"bench-seed-{user_id}", step=goal_type)
            request = user_pb2.CreateGoalRequest(
                user_id=user_id,
                goal_id=str(uuid.uuid4()),
                goal_type=goal_type,
                target_value=1000,
                target_date=target_date,
                step=step,
            )
            users.call("CreateGoal", request)
    finally:
        users.close()


def mix(user_url: str, activity_url: str, user_id: str) -> list[Target]:
    """Return the read-heavy request mix each client thread cycles through."""
    return [
        Target("GET /users/{id}/statistics", f"{activity_url}/users/{user_id}/statistics"),
        Target("GET /users/{id}/goals", f"{user_url}/users/{user_id}/goals"),
        Target("GET /status", f"{user_url}/status", auth=False),
    ]


def client(targets: list[Target], token: str, deadline: float, samples: Samples) -> None:
    """Send the mix round-robin over one keep-alive session until ``deadline``."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    auth = {"Authorization": f"Bearer {token}"}
    with requests.Session() as session:
        index = 0
        while time.perf_counter() < deadline:
            target = targets[index % len(targets)]
            index += 1
            started = time.perf_counter()
            try:
                response = session.get(
                    target.url,
                    headers=auth if target.auth else None,
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                latencies[target.label].append(elapsed)
            else:
                errors[target.label] += 1
    samples.merge(latencies, errors)


def run_load(targets: list[Target], token: str, threads: int, seconds: float) -> Samples:
    """Run ``threads`` clients for ``seconds`` and return what they measured."""
    samples = Samples()
    deadline = time.perf_counter() + seconds
    workers = [
        threading.Thread(target=client, args=(targets, token, deadline, samples))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return samples


def counting_start(minutes_ago: float = 10) -> str:
    """Return a ``start_time`` for a workout the bench ends at once and wants counted.

    A workout shorter than the service's minimum (1 minute) ends "discarded" and is neither
    reported nor added to totals: ended at once, it would skip the work the benches measure.
    """
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def print_table(samples: Samples, targets: list[Target], seconds: float) -> None:
    """Print requests/s and p50/p99 latency per request and overall."""
    print(f"\n{'request':<30} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}", end="")
    print(f" {'errors':>7}")
    everything: list[float] = []
    for target in targets:
        values = sorted(samples.latencies.get(target.label, []))
        everything.extend(values)
        _print_row(target.label, values, samples.errors.get(target.label, 0), seconds)
    _print_row("all", sorted(everything), sum(samples.errors.values()), seconds)


def _print_row(label: str, values: list[float], errors: int, seconds: float) -> None:
    p50, p99 = percentile(values, 0.50) * 1000, percentile(values, 0.99) * 1000
    rate = len(values) / seconds
    print(f"{label:<30} {len(values):>9} {rate:>9.1f} {p50:>8.1f} {p99:>8.1f} {errors:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time (10)")
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per replica (1)")
    parser.add_argument("--server-threads", type=int, default=16, help="threads per worker (16)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fitness-bench-") as data_dir:
        stack = make_stack(Path(data_dir), args.workers, args.server_threads)
        try:
            stack.start()
            user_url, activity_url = (stack.replicas_of(s)[0].url for s in SERVICES)
            user_id, token = seed(stack)
            targets = mix(user_url, activity_url, user_id)
            print(
                f"{args.threads} client threads, {args.seconds:g} s, one replica per service "
                f"({args.workers} worker(s) x {args.server_threads} threads), embedded stores; "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"{platform.machine()}"
            )
            samples = run_load(targets, token, args.threads, args.seconds)
            print_table(samples, targets, args.seconds)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
