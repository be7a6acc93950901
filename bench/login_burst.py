"""What a burst of logins does to everyone else: statistics p99 with and without 50 logins.

Starts a private stack (2 replicas of each service, one gateway, the state Redis; temporary
directory, free ports), registers one user, then for each trial measures statistics reads from
``--readers`` clients reading every ``--read-every`` seconds (open loop): first for
``--calm-seconds`` alone, then while ``--burst`` logins are sent through the gateway at once.
It prints each trial's p99 calm and busy and their ratio (target of issue 16: busy <= 2x calm),
and how the logins were answered (200, or 503 busy when the hashing pool is full).

Run it with the old and the new code side by side (``git worktree`` + ``PYTHONPATH``):

    .venv/bin/python bench/login_burst.py
    PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/bench/login_burst.py   # if it exists there
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the stack helpers the tests use

from conftest import GatewayApi, gateway_tier, make_replicas, running  # noqa: E402


def read_latencies(url: str, token: str, every: float, stop: threading.Event) -> list[float]:
    """Read ``url`` every ``every`` seconds (open loop) until ``stop``; return each latency."""
    took = []
    with requests.Session() as http:
        next_at = time.perf_counter()
        while not stop.is_set():
            started = time.perf_counter()
            answer = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            took.append(time.perf_counter() - started)
            answer.raise_for_status()
            next_at += every
            time.sleep(max(0.0, next_at - time.perf_counter()))
    return took


def p99_while(args, url: str, token: str, during) -> float:
    """Return the p99 of the reads made while ``during()`` runs."""
    stop = threading.Event()
    with ThreadPoolExecutor(args.readers) as pool:
        readers = [
            pool.submit(read_latencies, url, token, args.read_every, stop)
            for _ in range(args.readers)
        ]
        during()
        stop.set()
        samples = [t for reader in readers for t in reader.result()]
    return statistics.quantiles(samples, n=100)[98]


def burst(api: GatewayApi, body: dict, size: int) -> Counter:
    """Send ``size`` logins at once through the gateway; count each status, and the seconds."""
    started = time.perf_counter()
    with ThreadPoolExecutor(size) as pool:
        url = f"{api.user_url}/users/login"
        answers = [pool.submit(api.post, url, body) for _ in range(size)]
        statuses = Counter(answer.result().status_code for answer in answers)
    statuses["seconds"] = round(time.perf_counter() - started, 2)
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--read-every", type=float, default=0.1, help="seconds per reader")
    parser.add_argument("--calm-seconds", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="login-burst-") as tmp:
        replicas = [*make_replicas(2), *gateway_tier(1)]
        with running(Path(tmp), replicas, {"FITNESS_LOG_LEVEL": "WARNING"}) as stack:
            api = GatewayApi(stack)
            user = api.register()
            token = api.login(user["email"], user["password"])
            url = f"{api.activity_url}/users/{user['user_id']}/statistics"
            body = {"email": user["email"], "password": user["password"]}
            rate = args.readers / args.read_every
            print(f"statistics reads: {args.readers} readers, {rate:.0f}/s; {args.burst} logins")
            ratios = []
            for trial in range(1, args.trials + 1):
                calm = p99_while(args, url, token, lambda: time.sleep(args.calm_seconds))
                answered: Counter = Counter()
                busy = p99_while(
                    args,
                    url,
                    token,
                    lambda seen=answered: seen.update(burst(api, body, args.burst)),
                )
                ratios.append(busy / calm)
                print(
                    f"trial {trial}: p99 calm {calm * 1000:.1f} ms, during the burst "
                    f"{busy * 1000:.1f} ms: x{busy / calm:.2f}; logins {dict(answered)}"
                )
    print(f"ratio median x{statistics.median(ratios):.2f}, best x{min(ratios):.2f} (target <= 2)")


if __name__ == "__main__":
    main()
