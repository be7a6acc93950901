"""Measure goal sagas per second through the gateway, and recovery after a coordinator crash.

Starts a private stack (``--replicas`` of each service, the state Redis, one gateway; embedded
stores in a temporary directory, free ports) and registers ``--users`` users. Then:

1. throughput: ``--clients`` threads create goals through the gateway (one goal per request,
   each a create_goal saga: user service, then activity service) for ``--seconds``; prints
   completed sagas/s and latency percentiles;
2. recovery: with both activity replicas down, starts ``--interrupted`` sagas (they stop
   after step 1), SIGKILLs the gateway, brings the activity service back, restarts the gateway
   and times how long until every interrupted saga is settled (read from the saga log).

    .venv/bin/python -m bench.saga_throughput --seconds 10 --clients 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.harness.seeding import Account, jwt_secret, new_accounts
from bench.harness.stats import percentile_ms
from devstack.stack import STATE_REDIS, LocalStack
from tests.support.stack import gateway_tier, make_replicas

GOAL = {"goal_type": "workout_count", "target_value": 3, "target_date": "2099-01-01"}


def make_stack(data_dir: Path, replicas: int) -> LocalStack:
    """Return ``replicas`` of each service, the state Redis and a gateway, on free ports."""
    nodes = [*make_replicas(replicas), *gateway_tier(1)]
    env = {
        "FITNESS_LOG_LEVEL": "WARNING",
        "FITNESS_SAGA_STEP_DEADLINE_SECONDS": "300",
        "FITNESS_SAGA_LEASE_SECONDS": "2",
        "FITNESS_SAGA_RECOVERY_SECONDS": "0.2",
    }
    return LocalStack(data_dir, nodes, extra_env=env)


def register_users(stack: LocalStack, count: int) -> list[Account]:
    """Register ``count`` users on the first user replica, with tokens from the stack's secret."""
    user_url = stack.replicas_of("user_service")[0].url
    return new_accounts(user_url, count, jwt_secret(stack))


def create_goal(http, gateway: str, user: Account) -> requests.Response:
    url = f"{gateway}/users/{user.user_id}/goals"
    return http.post(url, json=GOAL, headers=user.auth, timeout=60)


def throughput(gateway: str, users: list[Account], clients: int, seconds: float):
    """Create goals from ``clients`` threads for ``seconds``; return latencies and statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        http = requests.Session()
        mine = users[index::clients]
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = create_goal(http, gateway, mine[n % len(mine)])
            elapsed = time.perf_counter() - started
            n += 1
            with lock:
                latencies.append(elapsed)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(latencies), statuses, time.monotonic() - started


def recovery(stack: LocalStack, users: list[Account], count: int) -> dict[str, float]:
    """Interrupt ``count`` sagas between their steps, crash the gateway, time their settling."""
    gateway = stack.replicas_of("gateway")[0]
    for replica in stack.replicas_of("activity_service"):
        stack.kill(replica.name)
    with ThreadPoolExecutor(count) as pool:  # each waits for its saga up to SAGA_WAIT_SECONDS
        answers = pool.map(lambda user: create_goal(requests, gateway.url, user), users[:count])
        saga_ids = [answer.headers["X-Saga-ID"] for answer in answers]
    stack.kill(gateway.name)
    for replica in stack.replicas_of("activity_service"):
        stack.start_replica(replica)
    for replica in stack.replicas_of("activity_service"):
        stack.wait_ready(replica)
    restarted = time.monotonic()
    stack.start_replica(gateway)
    log = stack.redis_client(stack.replicas_of(STATE_REDIS)[0], socket_timeout=5)
    open_states = set(saga_ids)
    while open_states and time.monotonic() - restarted < 120:
        for saga_id in list(open_states):
            record = json.loads(log.get(f"fgt:saga:{saga_id}"))
            if record["state"] in ("completed", "compensated", "failed"):
                open_states.discard(saga_id)
        time.sleep(0.05)
    settled = time.monotonic() - restarted
    stack.wait_ready(gateway)
    ready = time.monotonic() - restarted
    return {"settled_s": settled, "gateway_ready_s": ready, "unsettled": len(open_states)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--interrupted", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="saga-bench-") as tmp:
        stack = make_stack(Path(tmp), args.replicas)
        try:
            stack.start()
            users = register_users(stack, args.users)
            gateway = stack.replicas_of("gateway")[0].url
            latencies, statuses, elapsed = throughput(gateway, users, args.clients, args.seconds)
            figures = recovery(stack, users, args.interrupted)
        finally:
            stack.stop()
    completed = statuses.get(201, 0)
    print(f"replicas per service: {args.replicas}, clients: {args.clients}, users: {args.users}")
    print(f"sagas: {sum(statuses.values())} in {elapsed:.1f}s, statuses {statuses}")
    print(f"completed sagas/s: {completed / elapsed:.0f}")
    print(
        f"latency ms: p50 {percentile_ms(latencies, 0.5):.1f}, "
        f"p99 {percentile_ms(latencies, 0.99):.1f}"
    )
    print(
        f"recovery of {args.interrupted} interrupted sagas after a SIGKILLed coordinator: all "
        f"settled {figures['settled_s']:.2f}s after its restart began (gateway ready after "
        f"{figures['gateway_ready_s']:.2f}s), unsettled: {figures['unsettled']}"
    )


if __name__ == "__main__":
    main()
