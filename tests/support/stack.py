"""Start the services as real processes on free ports, and reach into what they store."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from pathlib import Path

from devstack.stack import REDIS, STATE_REDIS, LocalStack, Replica, free_port
from fitness import mongo, mtls

__all__ = ["free_port"]  # tests import it from here


def activity_db(stack: LocalStack):
    """Return the stack's activity database, through pymongo as the services reach it."""
    return _activity_db(stack.mongo_url)


def grpc_channel(stack: LocalStack, replica: Replica, role: str = "gateway"):
    """Open a channel to ``replica``'s gRPC server with the certificate of ``role``."""
    me = mtls.identity({"DATA_DIR": str(stack.data_dir)}, role)
    return mtls.channel(replica.grpc_target, me, replica.service)


@functools.cache
def _activity_db(url: str):
    # One client per store for the whole session: each client runs its own monitor threads.
    return mongo.connect(url, "activity")


def make_replicas(count: int = 2) -> list[Replica]:
    """Return ``count`` replicas of each service on free ports."""
    return [
        Replica(service, f"{service}-{n}", free_port(), free_port())
        for service in ("user_service", "activity_service")
        for n in range(1, count + 1)
    ]


def gateway_tier(gateways: int = 1, cache_nodes: int = 0) -> list[Replica]:
    """Return gateways on free ports with the state Redis they need (and cache servers)."""
    return [
        Replica(STATE_REDIS, "state-redis", free_port(), 0),
        *(Replica(REDIS, f"cache-redis-{n}", free_port(), 0) for n in range(1, cache_nodes + 1)),
        *(Replica("gateway", f"gateway-{n}", free_port(), 0) for n in range(1, gateways + 1)),
    ]


def start_stack(data_dir: Path, count: int = 2) -> LocalStack:
    """Start a stack of ``count`` replicas per service and a gateway in ``data_dir``.

    Goals are written through the gateway only (their saga keeps both services' copies in
    step); everything else a test may send to a replica directly.
    """
    replicas = [*make_replicas(count), *gateway_tier(1)]
    return launch(data_dir, replicas, {"FITNESS_LOG_LEVEL": "INFO"})


def launch(data_dir: Path, replicas: list[Replica], env: dict[str, str]) -> LocalStack:
    """Start ``replicas`` as a stack in ``data_dir``; stop what started if any one fails."""
    stack = LocalStack(data_dir, replicas, extra_env=env)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def running(data_dir: Path, replicas: list[Replica], env: dict[str, str]) -> Iterator[LocalStack]:
    """Run ``replicas`` as a stack for the ``with`` block, stopping it after."""
    stack = launch(data_dir, replicas, env)
    try:
        yield stack
    finally:
        stack.stop()


def log_events(path: Path) -> list[dict]:
    """Return the JSON events of a process's log file."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]
