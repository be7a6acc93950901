"""The fault suite: real processes killed (SIGKILL) and a broken network, under steady mixed load.

Starts a private stack (``faults_stack.FaultStack``: 2 replicas per service, 2 gateways, 3 cache
Redis servers, the state Redis with a replica and Sentinels, the user database on a 3-node
PostgreSQL cluster when the Debian binaries are there) and, for each scenario, runs the mixed
load of ``mixed_load`` (REST, goal sagas, live sessions on both gateways) for ``--seconds``,
injects the fault after ``--warmup`` seconds, recovers, waits for full health, and reads back
every acknowledged write. Each scenario becomes one row of ``bench/results/faults.json``:
requests sent, succeeded, failed with a clear error, failed otherwise, and writes lost (must
be 0). Every scenario restores what it broke, so the next one starts from a healthy stack.

    .venv/bin/python -m bench.faults                      # every scenario, ~8 minutes
    .venv/bin/python -m bench.faults --only kill-gateway,net-reset --seconds 30
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.faults_stack import FaultStack
from bench.harness.results import Row, Suite, command_line, save
from bench.harness.seeding import new_accounts
from bench.mixed_load import MixedLoad

DOWN_SECONDS = 5.0  # how long a killed process stays down before it is restarted
NET_FAULT_SECONDS = 8.0


@dataclass(frozen=True)
class Scenario:
    name: str
    area: str
    tried: str
    inject: Callable[[FaultStack], str]  # breaks, waits, mends; returns notes


def kill_and_restart(name: str) -> Callable[[FaultStack], str]:
    def inject(fs: FaultStack) -> str:
        fs.kill(name)
        time.sleep(DOWN_SECONDS)
        fs.restart(name)
        return ""

    return inject


def kill_coordinator(fs: FaultStack) -> str:
    """Hold sagas in flight (activity replicas frozen), SIGKILL the gateway running them."""
    fs.pause("activity_service", True)
    try:
        time.sleep(2.5)
        in_flight = len(fs.open_sagas())
        fs.kill("gateway-1")
    finally:
        fs.pause("activity_service", False)
    time.sleep(DOWN_SECONDS)
    fs.restart("gateway-1")
    return f"{in_flight} sagas in flight at the kill"


def kill_state_primary(fs: FaultStack) -> str:
    started = time.monotonic()
    old = fs.kill_state_primary()
    promoted = time.monotonic() - started
    time.sleep(2)
    fs.rejoin_state_redis(old)
    return f"Sentinel promoted the replica in {promoted:.1f} s; old primary rejoined as replica"


def kill_postgres_primary(fs: FaultStack) -> str:
    if fs.cluster is None:
        return "skipped: " + fs.postgres_skipped
    started = time.monotonic()
    moved = fs.kill_postgres_primary()
    return f"{moved} promoted {time.monotonic() - started:.1f} s after the kill"


def network(mode: str, **options) -> Callable[[FaultStack], str]:
    def inject(fs: FaultStack) -> str:
        fs.proxy.set(mode, **options)
        out = False
        deadline = time.monotonic() + NET_FAULT_SECONDS
        while time.monotonic() < deadline:
            out = out or fs.breaker_opened(fs.proxied_url)
            time.sleep(0.5)
        fs.proxy.set("pass")
        return "replica taken out of the ring" if out else "replica NOT taken out of the ring"

    return inject


SCENARIOS = [
    Scenario("kill-user", "faults", "SIGKILL user_service-1, restart after 5 s",
             kill_and_restart("user_service-1")),
    Scenario("kill-activity", "faults", "SIGKILL activity_service-1, restart after 5 s",
             kill_and_restart("activity_service-1")),
    Scenario("kill-gateway", "faults",
             "SIGKILL gateway-2 (its sockets move to gateway-1), restart after 5 s",
             kill_and_restart("gateway-2")),
    Scenario("kill-coordinator", "faults",
             "SIGKILL gateway-1 with goal sagas in flight (activity frozen 2.5 s)",
             kill_coordinator),
    Scenario("kill-cache-redis", "faults", "SIGKILL cache-redis-1, restart after 5 s",
             kill_and_restart("cache-redis-1")),
    Scenario("kill-docstore", "faults", "SIGKILL FerretDB (the activity store), restart after 5 s",
             kill_and_restart("docstore")),
    Scenario("kill-docstore-pg", "faults",
             "SIGKILL FerretDB's PostgreSQL, restart after 5 s", kill_and_restart("docstore-pg")),
    Scenario("kill-state-redis", "faults", "SIGKILL the state Redis primary (Sentinel failover)",
             kill_state_primary),
    Scenario("kill-postgres", "faults",
             "SIGKILL the PostgreSQL primary (standby promoted)", kill_postgres_primary),
    Scenario("net-latency", "network", "12 s latency gateway -> user_service-2 for 8 s",
             network("latency", latency=12.0)),
    Scenario("net-blackhole", "network", "blackhole gateway -> user_service-2 for 8 s",
             network("blackhole")),
    Scenario("net-reset", "network", "TCP RST on every gateway -> user_service-2 connection, 8 s",
             network("reset")),
]  # fmt: skip


def run(fs: FaultStack, scenario: Scenario, users, args) -> Row:
    """Run the load with the fault in the middle; return what the clients saw."""
    fs.wait_healthy()
    load = MixedLoad(fs.gateways, users, args.rate, args.sessions)
    load.start()
    time.sleep(args.warmup)
    began, notes = time.monotonic(), []
    fault = threading.Thread(target=lambda: notes.append(scenario.inject(fs)))
    fault.start()
    fault.join()
    time.sleep(max(3.0, args.seconds - args.warmup - (time.monotonic() - began)))
    load.stop()
    recovered = fs.wait_healthy(timeout=90)
    lost, more = load.verify()
    stuck = _stuck_sagas(fs)
    tally = load.tally
    notes += more
    notes.append(f"healthy again {recovered:.0f} s after the load stopped")
    if stuck:
        notes.append(f"{stuck} sagas never settled")
    reasons = ", ".join(f"{n} x {r}" for r, n in tally.reasons.most_common(4))
    if reasons:
        notes.append(reasons)
    return Row(
        area=scenario.area,
        tried=scenario.tried,
        amount=f"{args.seconds:.0f} s of {args.rate:g} req/s + {args.sessions * 2} live sockets",
        sent=tally.sent,
        succeeded=tally.succeeded,
        failed_clear=tally.failed_clear,
        failed_other=tally.failed_other,
        lost=lost + stuck,
        notes="; ".join(n for n in notes if n),
    )


def _stuck_sagas(fs: FaultStack, seconds: float = 40.0) -> int:
    deadline = time.monotonic() + seconds
    while (open_sagas := fs.open_sagas()) and time.monotonic() < deadline:
        time.sleep(1)
    return len(open_sagas)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="load per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before the fault")
    parser.add_argument("--rate", type=float, default=10.0, help="REST operations per second")
    parser.add_argument("--sessions", type=int, default=2, help="live sessions (2 sockets each)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fitness-faults-") as tmp:
        fs = FaultStack(Path(tmp))
        try:
            started = time.monotonic()
            fs.start()
            print(f"stack up in {time.monotonic() - started:.0f} s", flush=True)
            users = new_accounts(fs.gateways[0], 40)
            for scenario in chosen:
                if scenario.name == "kill-postgres" and fs.cluster is None:
                    print(f"skipping {scenario.name}: {fs.postgres_skipped}", flush=True)
                    continue
                print(f"--- {scenario.name}: {scenario.tried}", flush=True)
                row = run(fs, scenario, users, args)
                print(f"    {row}", flush=True)
                rows.append(row)
        finally:
            fs.stop()
    command = command_line("bench.faults", argv if argv is not None else sys.argv[1:])
    save(Suite("faults", command, rows))


if __name__ == "__main__":
    main()
