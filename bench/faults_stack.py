"""The private stack the fault suite runs on, and the faults it can inject.

Two replicas per service, two gateways, three cache Redis servers, the state Redis as deployed
(primary + replica + three Sentinels, ``tests/support/redis_ha.py``), the user database on a
3-node PostgreSQL streaming cluster when the Debian server binaries are there
(``tests/support/pg_cluster.py``; else SQLite), and a TCP fault proxy
(``tests/support/faultproxy.py``) between the gateways and user_service-2's HTTP port. Every
port is free and every file is in one temporary directory.
"""

from __future__ import annotations

import glob
import os
import signal
import time
from pathlib import Path

import requests

from devstack.stack import REDIS, LocalStack, Replica, free_ports
from tests.support.faultproxy import FaultProxy
from tests.support.redis_ha import RedisHA

PG_BINARIES = "/usr/lib/postgresql/*/bin/initdb"


class FaultStack:
    """Start, probe, break and mend the whole private stack."""

    def __init__(self, root: Path, use_postgres: bool = True):
        self.root = root
        ports = iter(free_ports(24))
        self.replicas = [
            Replica(service, f"{service}-{n}", next(ports), next(ports))
            for service in ("user_service", "activity_service")
            for n in (1, 2)
        ]
        self.replicas += [Replica(REDIS, f"cache-redis-{n}", next(ports), 0) for n in (1, 2, 3)]
        self.replicas += [Replica("gateway", f"gateway-{n}", next(ports), 0) for n in (1, 2)]
        state = [next(ports) for _ in range(5)]
        self.redis = RedisHA(root / "state-redis", state[0], state[1], state[2:])
        self.cluster = None
        self.postgres_skipped = ""
        pg = sorted(glob.glob(PG_BINARIES))
        if use_postgres and pg:
            from tests.support.pg_cluster import Cluster

            self.cluster = Cluster(Path(pg[-1]).parent, [next(ports) for _ in range(3)])
        elif use_postgres:
            self.postgres_skipped = f"no PostgreSQL server binaries ({PG_BINARIES})"
        self.stack: LocalStack | None = None
        self.proxy = FaultProxy(self.replica("user_service-2").http_port)

    def replica(self, name: str) -> Replica:
        # Once started, the stack also holds what it added itself (the document store).
        replicas = self.stack.replicas if self.stack is not None else self.replicas
        return next(r for r in replicas if r.name == name)

    @property
    def gateways(self) -> list[str]:
        return [r.url for r in self.replicas if r.service == "gateway"]

    @property
    def proxied_url(self) -> str:
        return f"http://{self.proxy.address}"

    def start(self) -> None:
        self.redis.start()
        env = {
            "FITNESS_LOG_LEVEL": "WARNING",
            **self.redis.env("gateway"),
            "FITNESS_STATE_REDIS_WAIT_COUNT": "1",
            "FITNESS_USER_HTTP_REPLICAS": f"{self.replica('user_service-1').url},"
            + self.proxied_url,
        }
        if self.cluster is not None:
            self.cluster.start(database="fitness")
            hosts = "&".join(f"host=127.0.0.1:{node.port}" for node in self.cluster.nodes)
            env["FITNESS_DATABASE_URL"] = (
                f"postgresql+psycopg2://postgres@/fitness?{hosts}&target_session_attrs=read-write"
            )
        self.proxy.start()
        self.stack = LocalStack(self.root / "stack", self.replicas, extra_env=env)
        self.stack.start()

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        self.proxy.stop()
        self.redis.stop()
        if self.cluster is not None:
            self.cluster.stop()

    # --- probes ---------------------------------------------------------------------------

    def unhealthy(self) -> str:
        """Say what is not well yet ("" when both gateways route to every replica and node)."""
        for gateway in self.gateways:
            try:
                status = requests.get(f"{gateway}/status", timeout=3).json()
            except (requests.RequestException, ValueError) as exc:
                return f"{gateway}: {type(exc).__name__}"
            for service in status["upstreams"].values():
                for replica in service["replicas"]:
                    # "half-open": the next request is the trial; nothing else to wait for.
                    if not replica["healthy"] or replica["breaker"] == "open":
                        return f"{gateway} sees {replica}"
            for node in status.get("cache_nodes", []):
                if not node["in_ring"]:
                    return f"{gateway} sees {node}"
        return ""

    def wait_healthy(self, timeout: float = 60.0) -> float:
        started = time.monotonic()
        while problem := self.unhealthy():
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the stack did not come back to full health: {problem}")
            time.sleep(0.5)
        return time.monotonic() - started

    def breaker_opened(self, url: str) -> bool:
        """Tell whether any gateway has taken ``url`` out (breaker open or unhealthy)."""
        for gateway in self.gateways:
            try:
                status = requests.get(f"{gateway}/status", timeout=3).json()
            except (requests.RequestException, ValueError):
                continue
            for service in status["upstreams"].values():
                for replica in service["replicas"]:
                    if replica["url"] == url and (
                        replica["breaker"] != "closed" or not replica["healthy"]
                    ):
                        return True
        return False

    # --- faults ---------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self.stack.kill(name)

    def restart(self, name: str) -> None:
        replica = self.replica(name)
        self.stack.start_replica(replica)
        self.stack.wait_ready(replica)

    def pause(self, service: str, paused: bool) -> None:
        """SIGSTOP (or SIGCONT) every replica of ``service``: alive, but answering nothing."""
        for replica in self.stack.replicas_of(service):
            os.killpg(self.stack.processes[replica.name].pid,
                      signal.SIGSTOP if paused else signal.SIGCONT)  # fmt: skip

    def open_sagas(self) -> list[str]:
        from gateway.sagas.log import SagaLog

        return SagaLog(self.redis.client(timeout=2.0), 5.0).open_sagas()

    def kill_state_primary(self) -> int:
        """SIGKILL the state Redis primary; return its port once Sentinel has promoted the other."""
        old = self.redis.master_port()
        self.redis.kill(old)
        deadline = time.monotonic() + 30
        while self._master_or_none() in (old, None):
            if time.monotonic() > deadline:
                raise TimeoutError("Sentinel did not promote the replica")
            time.sleep(0.2)
        return old

    def rejoin_state_redis(self, port: int) -> None:
        """Start the old primary again as a replica of the new one (as an operator would)."""
        self.redis.rejoin(port)

    def _master_or_none(self) -> int | None:
        try:
            return self.redis.master_port()
        except Exception:  # a Sentinel may answer nothing mid-failover
            return None

    def kill_postgres_primary(self) -> str:
        """SIGKILL the PostgreSQL primary and promote a standby (the failover manager's part)."""
        primary = self._pg_primary()
        survivors = [n for n in self.cluster.nodes if n is not primary and n.process.poll() is None]
        self.cluster.kill(primary)
        time.sleep(1.0)  # what a failover manager needs to notice (see test_failover_postgres)
        new = self.cluster.fail_over(survivors)
        self.cluster.require_sync(new, [n for n in survivors if n is not new])
        return f"{primary.name} -> {new.name}"

    def _pg_primary(self):
        for node in self.cluster.nodes:
            if node.process.poll() is None and not node.query("SELECT pg_is_in_recovery()")[0]:
                return node
        raise RuntimeError("no PostgreSQL primary")
