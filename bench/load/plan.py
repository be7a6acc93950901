"""The load run's support: the private stack, users per step, CPU, read-back.

- :func:`make_stack`: 2 replicas per service, the state Redis, cache Redis nodes and 2 gateways
  on free ports, with embedded stores in a temporary directory (as ``make up`` runs them);
- :func:`users_for`: how many users of each kind give a target request rate at a pacing;
- :class:`CpuMeter`: CPU seconds per process of the stack (each process with its children),
  of this load generator, and of the whole machine (the rest is other people's work);
- :func:`verify`: reads every acknowledged write (or a sample) back from the services
  themselves, bypassing the gateways' cache.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import psutil
import requests
from gevent.pool import Pool

from bench.harness.client import bearer
from bench.harness.seeding import token_for
from bench.load.live import LiveSession
from bench.load.locustfile import (
    GoalSaga,
    Login,
    Registration,
    StatisticsRead,
    Workout,
    Write,
)
from devstack.stack import LocalStack
from tests.support.stack import gateway_tier, make_replicas

# kind: (user class, timed requests per operation)
PROFILE = {
    "registration": (Registration, 1),
    "login": (Login, 1),
    "workout": (Workout, 2),
    "statistics": (StatisticsRead, 1),
    "goal": (GoalSaga, 1),
    "live": (LiveSession, 8),
}
# Shares of the request rate. Registrations and logins are few (as in real traffic), and each
# costs an argon2 hash (~0.1 s of one core here), so they weigh far more than their share.
DEFAULT_MIX = {
    "registration": 0.02,
    "login": 0.03,
    "workout": 0.30,
    "statistics": 0.30,
    "goal": 0.10,
    "live": 0.25,
}
LABELS = {
    "registration": "registrations",
    "login": "logins",
    "workout": "workouts (start+end)",
    "statistics": "statistics reads",
    "goal": "goal sagas",
    "live": "live sessions (8 steps each)",
}
SHARED_ACCOUNTS = 80  # logins, statistics, goals and live sessions pick among these
READ_TIMEOUT_SECONDS = 10.0
VERIFY_CONCURRENCY = 16


def make_stack(data_dir: Path, replicas: int, gateways: int, cache_nodes: int, log_level: str):
    """Return (not start) the stack under test, every process on a free port."""
    nodes = [*make_replicas(replicas), *gateway_tier(gateways, cache_nodes)]
    env = {
        "FITNESS_LOG_LEVEL": log_level,
        # The stack's own stores in the temporary directory, whatever the caller's shell set.
        "FITNESS_DATABASE_URL": "",
        "FITNESS_MONGO_URL": "",
        "FITNESS_ENV": "development",
    }
    return LocalStack(data_dir, nodes, extra_env=env)


def users_for(rate: float, mix: dict[str, float], pacing: float) -> dict[str, int]:
    """Users per kind so that users x requests per operation / pacing = rate x share."""
    users = {}
    for kind, share in mix.items():
        if share > 0:
            operations = rate * share / PROFILE[kind][1]
            users[kind] = max(1, round(operations * pacing))
    return users


def planned_rate(users: dict[str, int], pacing: float) -> float:
    return sum(count * PROFILE[kind][1] for kind, count in users.items()) / pacing


def composition(mix: dict[str, float]) -> str:
    return ", ".join(f"{share:.0%} {LABELS[kind]}" for kind, share in mix.items() if share > 0)


def parse_mix(text: str) -> dict[str, float]:
    """``workout=0.3,statistics=0.3,…`` (shares of requests; normalised to sum to 1)."""
    mix = {}
    for part in text.split(","):
        kind, _, share = part.partition("=")
        if kind.strip() not in PROFILE:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(PROFILE)}")
        mix[kind.strip()] = float(share)
    total = sum(mix.values())
    return {kind: share / total for kind, share in mix.items()}


@dataclass
class CpuMeter:
    """CPU seconds used per process tree of the stack, by this process, and by the machine."""

    stack: LocalStack
    marks: dict[str, float] = field(default_factory=dict)
    machine: tuple[float, float] = (0.0, 0.0)  # busy, wall
    started: float = 0.0

    def start(self) -> None:
        self.marks, self.started = self._read(), time.monotonic()
        self.machine = self._machine()

    def percentages(self) -> dict[str, float]:
        """Percent of one core per process over the interval since start (100 = one core)."""
        now, elapsed = self._read(), max(1e-6, time.monotonic() - self.started)
        used = {name: 100 * (now[name] - self.marks.get(name, 0.0)) / elapsed for name in now}
        busy = self._machine()[0] - self.machine[0]
        used["machine (all processes)"] = 100 * busy / elapsed
        ours = sum(v for k, v in used.items() if k != "machine (all processes)")
        used["others on the machine"] = max(0.0, used["machine (all processes)"] - ours)
        return used

    def _read(self) -> dict[str, float]:
        seconds = {"load generator (locust)": _tree_cpu(os.getpid(), children=False)}
        for name, process in self.stack.processes.items():
            seconds[name] = _tree_cpu(process.pid)
        return seconds

    @staticmethod
    def _machine() -> tuple[float, float]:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        return sum(times) - idle, time.monotonic()


def _tree_cpu(pid: int, children: bool = True) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *(root.children(recursive=True) if children else [])]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            cpu = process.cpu_times()
            total += cpu.user + cpu.system
        except psutil.Error:
            continue
    return total


def verify(
    writes: list[Write], stack: LocalStack, secret: str, sample: int
) -> tuple[dict[int, int], dict[str, int]]:
    """Read acknowledged writes back from the services; return (lost per step, counts)."""
    by_kind: dict[str, list[Write]] = {}
    for write in writes:
        by_kind.setdefault(write.kind, []).append(write)
    chosen = [
        w
        for group in by_kind.values()
        for w in (random.sample(group, sample) if sample and len(group) > sample else group)
    ]
    reader = Reader(stack, secret)
    results = list(Pool(VERIFY_CONCURRENCY).imap(reader.check, chosen))  # in order
    lost: dict[int, int] = {}
    counts = {"acknowledged": len(writes), "checked": len(chosen), "lost": 0}
    for write, verdict in zip(chosen, results, strict=True):
        counts[verdict] = counts.get(verdict, 0) + 1
        label = f"{write.kind} {write.status or ''}".strip() + f": {verdict}"
        counts[label] = counts.get(label, 0) + 1
        if verdict == "lost":
            lost[write.step] = lost.get(write.step, 0) + 1
            if counts["lost"] <= 5:
                print(f"LOST {write}")
    return lost, counts


class Reader:
    """Reads one acknowledged write back: ``readable``, ``lost`` or ``compensated``."""

    def __init__(self, stack: LocalStack, secret: str):
        self.users = [r.url for r in stack.replicas_of("user_service")]
        self.activities = [r.url for r in stack.replicas_of("activity_service")]
        self.gateway = stack.replicas_of("gateway")[0].url
        self.secret = secret
        self.http = requests.Session()
        self.http.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=VERIFY_CONCURRENCY))

    def check(self, write: Write) -> str:
        token = token_for(write.user_id, self.secret)
        if write.kind == "registration":
            found = self._get(self.users, f"/users/{write.user_id}", token)
            return "readable" if found and found.get("user_id") == write.user_id else "lost"
        if write.kind == "workout":
            found = self._get(self.activities, f"/workouts/{write.item_id}", token)
            return "readable" if found and found.get("status") == "ended" else "lost"
        goal_id = write.item_id
        if write.status == 202:  # accepted while the saga was still running: wait for it
            state, goal_id = self._settle(write.saga_id, token)
            if state != "completed":
                return "compensated" if state in ("compensated", "failed") else "lost"
        found = self._get(self.users, f"/users/{write.user_id}/goals/{goal_id}", token)
        return "readable" if found and found.get("goal_id") == goal_id else "lost"

    def _settle(self, saga_id: str, token: str) -> tuple[str, str]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            saga = self._get([self.gateway], f"/sagas/{saga_id}", token) or {}
            if saga.get("state") in ("completed", "compensated", "failed"):
                return saga["state"], saga.get("goal_id", "")
            gevent.sleep(0.5)
        return "running", ""

    def _get(self, bases: list[str], path: str, token: str) -> dict | None:
        """GET from any replica (retried on another); None when none answers 200."""
        headers = bearer(token)
        for attempt in range(3 * len(bases)):
            base = bases[attempt % len(bases)]
            try:
                answer = self.http.get(base + path, headers=headers, timeout=READ_TIMEOUT_SECONDS)
            except requests.RequestException:
                continue
            if answer.status_code == 200:
                return json.loads(answer.text)
            if answer.status_code == 404:
                return None
        return None
