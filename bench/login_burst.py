"""What a burst of logins does to everyone else: statistics p99 with and without 50 logins.

Starts a private stack (2 replicas of each service, one gateway, the state Redis; temporary
directory, free ports), registers one user, then for each trial measures statistics reads from
``--readers`` clients reading every ``--read-every`` seconds (open loop): first for
``--calm-seconds`` alone, then while ``--burst`` logins are sent through the gateway at once.
It prints each trial's p99 calm and busy and their ratio (target of issue 16: busy <= 2x calm),
and how the logins were answered (200, or 503 busy when the hashing pool is full).

Run it with the old and the new code side by side (``git worktree`` + ``PYTHONPATH``):

    .venv/bin/python -m bench.login_burst
    PYTHONPATH=/tmp/old .venv/bin/python /tmp/old/bench/login_burst.py   # if it exists there
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import requests

from bench.harness.client import REQUEST_TIMEOUT_SECONDS
from bench.harness.readers import p99_while
from bench.harness.seeding import PASSWORD, new_account
from tests.support.stack import gateway_tier, make_replicas, running


def burst(http: requests.Session, gateway: str, body: dict, size: int) -> Counter:
    """Send ``size`` logins at once through the gateway; count each status, and the seconds."""
    started = time.perf_counter()
    url = f"{gateway}/users/login"
    with ThreadPoolExecutor(size) as pool:
        answers = [
            pool.submit(http.post, url, json=body, timeout=REQUEST_TIMEOUT_SECONDS)
            for _ in range(size)
        ]
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
    with tempfile.TemporaryDirectory(prefix="login-burst-") as tmp, requests.Session() as http:
        replicas = [*make_replicas(2), *gateway_tier(1)]
        with running(Path(tmp), replicas, {"FITNESS_LOG_LEVEL": "WARNING"}) as stack:
            gateway = stack.replicas_of("gateway")[0].url
            user = new_account(gateway)
            url = f"{gateway}/users/{user.user_id}/statistics"
            body = {"email": user.email, "password": PASSWORD}
            rate = args.readers / args.read_every
            print(f"statistics reads: {args.readers} readers, {rate:.0f}/s; {args.burst} logins")
            ratios = []
            calm_period = partial(time.sleep, args.calm_seconds)
            for trial in range(1, args.trials + 1):
                calm, _ = p99_while(url, user.token, args.readers, args.read_every, calm_period)
                answered: Counter = Counter()
                busy, _ = p99_while(
                    url,
                    user.token,
                    args.readers,
                    args.read_every,
                    lambda seen=answered: seen.update(burst(http, gateway, body, args.burst)),
                )
                ratios.append(busy / calm)
                print(
                    f"trial {trial}: p99 calm {calm * 1000:.1f} ms, during the burst "
                    f"{busy * 1000:.1f} ms: x{busy / calm:.2f}; logins {dict(answered)}"
                )
    print(f"ratio median x{statistics.median(ratios):.2f}, best x{min(ratios):.2f} (target <= 2)")


if __name__ == "__main__":
    main()
