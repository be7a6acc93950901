"""Measure live-session fan-out over WebSocket: connect time, broadcast latency, memory per socket.

Starts a private stack in a temporary directory (one user_service and one activity_service
replica, the state Redis and two gateway instances; free ports, embedded stores) and, for each
N of ``--sizes``, runs two scenarios: N sockets in one session, and N sockets in sessions of
``--small``. Sockets are spread evenly over both gateways and over ``--clients`` client
processes (aiohttp or picows on uvloop, ``--client``). Each session gets ``--rate`` chat
messages a second for ``--seconds``, sent by its members in turn; each message carries its
send time and every receiver (the sender included) records receive time - send time
(CLOCK_MONOTONIC is system-wide on Linux, so times from different processes compare).
Under the table, each scenario's bursts (one per message sent): the slowest delivery of each;
the gateways' own share, from the event's arrival from Redis to the last socket write
returning, as each gateway's ``/status`` reports it; and the client processes' garbage
collection pauses (see ``bench.live_clients._freeze_heap``).

Users are synthetic: the socket layer only verifies the JWT, so tokens are minted with the
stack's own secret for made-up user ids. Sessions are created and their members recorded with
``gateway.live.store`` before the sockets join, so joins are not announced (as when members come
back); ``--announce-joins`` makes every join broadcast ``participant_joined`` instead (N^2/2
deliveries in one session). Both gateways are restarted before each scenario so that memory
(RSS of the gateway workers, /proc) and CPU figures start clean. Run from the repository root:

    .venv/bin/python -m bench.live_fanout --sizes 1000,2000,5000 --find-max
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp
import picows
import requests

import gateway
from bench.harness.cpu import cpu_by_group, machine_busy_seconds, warn_if_others_busy
from bench.harness.results import command_line
from bench.harness.seeding import jwt_secret, token_for
from bench.harness.stats import percentile
from bench.harness.stats import percentile_ms as ms
from bench.live_clients import Clients
from devstack.stack import STATE_REDIS, LocalStack
from gateway.live.store import LiveStore
from tests.support.stack import gateway_tier, make_replicas

GATEWAYS = 2
TARGET_P99_SECONDS = 0.2
LIVE_TTL_SECONDS = 3600  # how long the live store keeps a session's records
DRAIN_SECONDS = 3.0  # after the last send, time for deliveries still under way
SERVICES = ("user_service", "activity_service")
COLUMNS = (  # title, width
    ("scenario", 16),
    ("sends/s", 7),
    ("connect p50/p99", 15),
    ("all s", 5),
    ("join p50/p99", 12),
    ("all s", 5),
    ("MB/conn", 7),
    ("fan-out p50/p99/max", 19),
    ("delivered", 13),
    ("CPU gw/cli/redis/other", 22),
    ("client lag loop/send p99", 24),
)


# --- the stack -----------------------------------------------------------------------------


def make_stack(data_dir: Path) -> LocalStack:
    """Return one replica per service, the state Redis and two gateways, on free ports."""
    replicas = [*make_replicas(1), *gateway_tier(GATEWAYS)]
    env = {"FITNESS_LOG_LEVEL": "WARNING", "FITNESS_ENV": "development"}
    # The stack's own stores in the temporary directory, whatever the caller's shell has set.
    env.update(FITNESS_DATABASE_URL="", FITNESS_MONGO_URL="")
    return LocalStack(data_dir, replicas=replicas, extra_env=env)


def restart_gateways(stack: LocalStack) -> None:
    """Start both gateways afresh: no sockets, timers or memory left from the last scenario."""
    for replica in stack.replicas_of("gateway"):
        stack.kill(replica.name)
        stack.start_replica(replica)
    for replica in stack.replicas_of("gateway"):
        stack.wait_ready(replica)


def workers_rss(leaders: list[int]) -> int:
    """Return the resident bytes of the processes in these groups, leaders (masters) left out."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, group = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[2])
            if group in leaders and pid not in leaders:
                total += int((stat.parent / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
    return total * os.sysconf("SC_PAGE_SIZE")


def prepare_sessions(store: LiveStore, members: dict[str, list[str]], announce: bool) -> None:
    """Create the sessions; unless ``announce``, record their members so joins are quiet."""
    for session_id, users in members.items():
        store.create(session_id, users[0], "strength", "bench")
        if not announce:
            for user_id in users:
                store.add_member(session_id, user_id)


# --- one scenario --------------------------------------------------------------------------


@dataclass
class Layout:
    """Who is who in one scenario: socket i's user, session, gateway and client process."""

    users: list[str]
    session_of: list[str]
    by_session: dict[str, list[int]]
    client_of: list[int]
    per_client: list[list[int]]

    @classmethod
    def make(cls, n: int, size: int, clients: int) -> Layout:
        sessions = [str(uuid.uuid4()) for _ in range(math.ceil(n / size))]
        session_of = [sessions[i // size] for i in range(n)]
        by_session: dict[str, list[int]] = {s: [] for s in sessions}
        for i, session_id in enumerate(session_of):
            by_session[session_id].append(i)
        client_of = [(i // GATEWAYS) % clients for i in range(n)]  # each has both gateways
        per_client = [[i for i in range(n) if client_of[i] == c] for c in range(clients)]
        users = [str(uuid.uuid4()) for _ in range(n)]
        return cls(users, session_of, by_session, client_of, per_client)

    def sends_per_client(self, sends: list[tuple[float, int]]) -> list[list[tuple[float, int]]]:
        """Split (time, socket) sends by client process, sockets numbered within each."""
        local = {i: k for indices in self.per_client for k, i in enumerate(indices)}
        split: list[list[tuple[float, int]]] = [[] for _ in self.per_client]
        for at, i in sends:
            split[self.client_of[i]].append((at, local[i]))
        return split


@dataclass
class Bench:
    """The running stack and what is needed to run scenarios on it."""

    stack: LocalStack
    args: argparse.Namespace
    secret: str = ""
    store: LiveStore | None = None
    results: list[dict] = field(default_factory=list)

    def start(self) -> None:
        self.stack.start()
        self.secret = jwt_secret(self.stack)
        client = self.stack.redis_client(self.stack.replicas_of(STATE_REDIS)[0], socket_timeout=10)
        self.store = LiveStore(client, LIVE_TTL_SECONDS, gateway.DEFAULTS["LIVE_MAX_EVENTS"])

    def run(self, n: int, size: int) -> dict:
        """Connect ``n`` sockets in sessions of ``size``, broadcast, print and return figures."""
        restart_gateways(self.stack)
        layout = Layout.make(n, size, self.args.clients)
        members = {s: [layout.users[i] for i in m] for s, m in layout.by_session.items()}
        prepare_sessions(self.store, members, self.args.announce_joins)
        clients = Clients(self.args.clients, self.args.client, self.args.deflate)
        try:
            result = self._phases(clients, layout)
        finally:
            clients.stop()
        result.update(n=n, size=size, sessions=len(layout.by_session), rate=self.args.rate)
        self.results.append(result)
        print_row(result)
        return result

    def _phases(self, clients: Clients, layout: Layout) -> dict:
        args, gateways = self.args, self.stack.replicas_of("gateway")
        urls = [f"ws://127.0.0.1:{r.http_port}/ws" for r in gateways]
        token = partial(token_for, secret=self.secret)
        plans = [
            [(urls[i % GATEWAYS], token(layout.users[i])) for i in m] for m in layout.per_client
        ]
        leaders = [self.stack.processes[r.name].pid for r in gateways]
        concurrency = max(1, args.connect_concurrency // args.clients)
        rss_before, started = workers_rss(leaders), time.monotonic()
        connects = clients.call("connect", [(p, concurrency) for p in plans])
        connected = time.monotonic()
        sessions = [[layout.session_of[i] for i in m] for m in layout.per_client]
        joins = clients.call("join", [(s, concurrency) for s in sessions])
        joined = time.monotonic()
        time.sleep(1.0)  # let the joins' bookkeeping settle before reading memory
        rss_after, start = workers_rss(leaders), time.monotonic() + 1.0
        sends = plan_sends(list(layout.by_session.values()), args.rate, args.seconds, start)
        until = start + args.seconds + DRAIN_SECONDS
        clients.send("broadcast", [(s, until) for s in layout.sends_per_client(sends)])
        groups = {r.name: self.stack.processes[r.name].pid for r in self.stack.replicas}
        groups.update({f"client-{k}": p.pid for k, p in enumerate(clients.processes)})
        cpu = measure_cpu(groups, start, start + args.seconds)
        results = clients.collect()
        failed = sum((r["failed"] for r in [*connects, *joins]), Counter())
        bursts: dict[str, float] = {}
        for result in results:
            for burst, slowest in result["burst_max"].items():
                bursts[burst] = max(slowest, bursts.get(burst, 0.0))
        return {
            "connect": sorted(t for r in connects for t in r["times"]),
            "connect_all": connected - started,
            "join": sorted(t for r in joins for t in r["times"]),
            "join_all": joined - connected,
            "mb_per_conn": (rss_after - rss_before) / len(layout.users) / 2**20,
            "latencies": sorted(x for r in results for x in r["latencies"]),
            "expected": sum(len(layout.by_session[layout.session_of[i]]) for _, i in sends),
            "send_lags": sorted(x for r in results for x in r["send_lags"]),
            "loop_lags": sorted(x for r in results for x in r["loop_lags"]),
            "gc_pauses": sorted(x for r in results for x in r["gc_pauses"]),
            "errors": sum((Counter(r["errors"]) for r in results), failed),
            "cpu": cpu,
            "bursts": sorted(bursts.values()),
            "gateway_fanout": [gateway_fanout(r.http_port) for r in gateways],
        }


def gateway_fanout(port: int) -> dict:
    """Return a gateway's own fan-out times, as its ``/status`` reports them."""
    answer = requests.get(f"http://127.0.0.1:{port}/status", timeout=10)
    return answer.json()["live"]["fanout"]


def plan_sends(sessions: list[list[int]], rate: float, seconds: float, start: float):
    """Return (time, socket) sends: ``rate`` a second per session, members in turn."""
    count, sends = round(rate * seconds), []
    for s, members in enumerate(sessions):
        offset = s / (len(sessions) * rate)
        sends += [
            (start + offset + k / rate, members[(k + s) % len(members)]) for k in range(count)
        ]
    return sorted(sends)


def measure_cpu(groups: dict[str, int], begin: float, end: float) -> dict[str, float]:
    """Return the share of one core each kind of process used from ``begin`` to ``end``."""
    time.sleep(max(0.0, begin - time.monotonic()))
    before, busy, own = cpu_by_group(groups), machine_busy_seconds(), time.process_time()
    time.sleep(max(0.0, end - time.monotonic()))
    used = {k: v - before[k] for k, v in cpu_by_group(groups).items()}
    other = machine_busy_seconds() - busy - sum(used.values()) - (time.process_time() - own)
    kinds = {"gateways": "gateway", "clients": "client", "redis": "state-redis"}
    shares = {kind: sum(v for k, v in used.items() if k.startswith(p)) for kind, p in kinds.items()}
    shares["services"] = sum(v for k, v in used.items() if k.startswith(SERVICES))
    shares["other"] = max(0.0, other)  # may dip below 0 by rounding of clock ticks
    return {kind: seconds / (end - begin) for kind, seconds in shares.items()}


# --- reporting -----------------------------------------------------------------------------


def print_header(args) -> None:
    print(f"command: {command_line('bench.live_fanout', sys.argv[1:], sys.executable)}")
    print(
        f"machine: {os.cpu_count()} CPUs, load average before start {os.getloadavg()[0]:.2f}; "
        f"{platform.python_implementation()} {platform.python_version()}; client "
        f"{client_version(args.client)} on uvloop"
        f"{', offering permessage-deflate' if args.deflate else ''}"
    )
    print(
        f"gateways: 2 x gunicorn {gateway.DEFAULTS['WORKER_CLASS']} "
        f"{gateway.DEFAULTS['WORKERS']} worker(s) (worker_connections "
        f"{gateway.DEFAULTS['WORKER_CONNECTIONS']}), sockets alternate between them; "
        f"{args.clients} client processes on the same 2 cores"
    )
    print(
        "users: synthetic ids with JWTs minted from the stack's secret (the socket layer "
        "verifies the token only); joins announced: "
        f"{'yes' if args.announce_joins else 'no (members recorded first)'}"
    )
    print(
        f"load: {args.rate:g} chat messages/s per session for {args.seconds:g} s; fan-out = "
        "receive - send time over every receiver; times in ms unless 's'; CPU = % of one core "
        "during the broadcast; client lag = how late the client loops woke / sent (p99)\n"
    )
    print(
        "  ".join(
            f"{title:{'<' if n == 0 else '>'}{width}}" for n, (title, width) in enumerate(COLUMNS)
        )
    )


def client_version(kind: str) -> str:
    return f"aiohttp {aiohttp.__version__}" if kind == "aiohttp" else f"picows {picows.__version__}"


def print_row(r: dict) -> None:
    """Print one scenario's figures under the header's columns (times in ms unless said)."""
    label = f"{r['n']} x1" if r["sessions"] == 1 else f"{r['n']} in {r['sessions']}x{r['size']}"
    lat, cpu, connect, join = r["latencies"], r["cpu"], r["connect"], r["join"]
    cells = [
        label,
        f"{r['sessions'] * r['rate']:g}",
        f"{ms(connect, 0.5):.0f}/{ms(connect, 0.99):.0f}",
        f"{r['connect_all']:.1f}",
        f"{ms(join, 0.5):.0f}/{ms(join, 0.99):.0f}",
        f"{r['join_all']:.1f}",
        f"{r['mb_per_conn']:.3f}",
        f"{ms(lat, 0.5):.0f}/{ms(lat, 0.99):.0f}/{ms(lat, 1.0):.0f}",
        f"{len(lat)}/{r['expected']}",
        "/".join(f"{cpu[k]:.0%}" for k in ("gateways", "clients", "redis", "other")),
        f"{ms(r['loop_lags'], 0.99):.1f}/{ms(r['send_lags'], 0.99):.1f}",
    ]
    widths = [("<" if n == 0 else ">") + str(width) for n, (_, width) in enumerate(COLUMNS)]
    print("  ".join(f"{cell:{width}}" for cell, width in zip(cells, widths, strict=True)))
    indent = " " * (COLUMNS[0][1] + 2)
    bursts = r["bursts"]
    slow = sum(1 for b in bursts if b > TARGET_P99_SECONDS)
    print(
        f"{indent}slowest delivery per burst p50/p90/max {ms(bursts, 0.5):.0f}/"
        f"{ms(bursts, 0.9):.0f}/{ms(bursts, 1.0):.0f} ms, {slow} of {len(bursts)} bursts over "
        f"{TARGET_P99_SECONDS * 1000:.0f} ms; gateways' own fan-out p50/p99/max "
        + ", ".join(
            f"{g['p50_ms']:.0f}/{g['p99_ms']:.0f}/{g['max_ms']:.0f}" for g in r["gateway_fanout"]
        )
        + f" ms; client GC pauses {len(r['gc_pauses'])}, longest "
        + f"{ms(r['gc_pauses'] or [0.0], 1.0):.1f} ms"
    )
    if r["errors"]:
        print(f"{indent}errors: {dict(r['errors'])}")
    sys.stdout.flush()


def meets_target(r: dict) -> bool:
    return (
        len(r["latencies"]) >= r["expected"]
        and percentile(r["latencies"], 0.99) <= TARGET_P99_SECONDS
    )


def find_max(bench: Bench, ones: dict[int, dict]) -> None:
    """Bisect between the largest passing and the smallest failing one-session size."""
    good = max((n for n, r in ones.items() if meets_target(r)), default=0)
    bad = min((n for n, r in ones.items() if not meets_target(r)), default=None)
    if bad is None:
        print(f"\nlargest N with p99 <= 200 ms: >= {good} (every size met it)")
        return
    for _ in range(bench.args.find_steps):
        n = round((good + bad) / 2 / 250) * 250
        if n in (good, bad):
            break
        good, bad = (n, bad) if meets_target(bench.run(n, n)) else (good, n)
    print(f"\nlargest N with p99 <= 200 ms, one session: about {good} (fails at {bad}, 250 steps)")


def warn_if_noisy(results: list[dict]) -> None:
    """Say so when processes outside the benchmark used a noticeable share of the CPUs."""
    other = max((r["cpu"]["other"] for r in results), default=0.0)
    warn_if_others_busy(other, "a broadcast")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sizes", default="1000,2000,5000", help="socket counts (1000,2000,5000)")
    add("--small", type=int, default=10, help="size of the small sessions; 0: none (10)")
    add("--rate", type=float, default=2.0, help="chat messages/s per session (2)")
    add("--seconds", type=float, default=10.0, help="broadcast time (10)")
    add("--clients", type=int, default=2, help="client processes (2)")
    add("--connect-concurrency", type=int, default=100, help="connects in flight (100)")
    add("--announce-joins", action="store_true", help="do not record members before joining")
    add("--client", choices=("aiohttp", "picows"), default="aiohttp", help="client library")
    add("--deflate", action="store_true", help="offer permessage-deflate, as browsers do (aiohttp)")
    add("--find-max", action="store_true", help="bisect the largest N with p99 <= 200 ms")
    add("--find-steps", type=int, default=3, help="bisection steps (3)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # the gateways inherit it too
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="live-fanout-bench-") as tmp:
        bench = Bench(make_stack(Path(tmp)), args)
        try:
            bench.start()
            ones = {}
            for n in (int(size) for size in args.sizes.split(",")):
                ones[n] = bench.run(n, n)
                if args.small:
                    bench.run(n, args.small)
            if args.find_max:
                find_max(bench, ones)
        finally:
            bench.stack.stop()
    warn_if_noisy(bench.results)


if __name__ == "__main__":
    main()
