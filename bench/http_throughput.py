"""Measure HTTP throughput and latency of a read-heavy mix against one replica of each service.

Starts a private stack (one user_service and one activity_service replica, embedded stores in a
temporary data directory, free ports), seeds one user with goals and workouts, then runs
``--threads`` client threads for ``--seconds``. Each thread keeps one ``requests.Session`` (so
connections are reused) and cycles through the mix below. Run from the repository root:

    .venv/bin/python -m bench.http_throughput --seconds 10 --threads 8
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.harness.client import REQUEST_TIMEOUT_SECONDS, bearer
from bench.harness.seeding import SERVICES, seed_user
from bench.harness.stats import percentile_ms
from devstack.stack import LocalStack
from tests.support.stack import make_replicas


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
    replicas = make_replicas(1)
    env = {"FITNESS_WORKERS": str(workers), "FITNESS_THREADS": str(server_threads)}
    # The stack's own stores in the temporary directory, whatever the caller's shell has set.
    env.update(FITNESS_DATABASE_URL="", FITNESS_MONGO_URL="", FITNESS_ENV="development")
    return LocalStack(data_dir, replicas=replicas, extra_env=env)


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
    auth = bearer(token)
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
    p50, p99 = percentile_ms(values, 0.50), percentile_ms(values, 0.99)
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
            account, _ = seed_user(stack)
            targets = mix(user_url, activity_url, account.user_id)
            print(
                f"{args.threads} client threads, {args.seconds:g} s, one replica per service "
                f"({args.workers} worker(s) x {args.server_threads} threads), embedded stores; "
                f"{platform.python_implementation()} {platform.python_version()}, "
                f"{platform.machine()}"
            )
            samples = run_load(targets, account.token, args.threads, args.seconds)
            print_table(samples, targets, args.seconds)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
