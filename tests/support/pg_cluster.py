"""A PostgreSQL primary with streaming standbys from the Debian server binaries, for failover tests.

The test plays the failover manager's part (Patroni in docker-compose.yml): it promotes the most
advanced standby and points the other one at it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from tests.support.system_packages import require

DEBIAN_BINARIES = "/usr/lib/postgresql/*/bin"
READY_TIMEOUT_SECONDS = 30.0
PRIMARY_SETTINGS = """
wal_level = replica
max_wal_senders = 10
hot_standby = on
wal_keep_size = 64MB
shared_buffers = 32MB
max_connections = 60
"""


def server_binaries() -> Path:
    """Return the newest Debian PostgreSQL server's bin directory (installed on CI if absent)."""
    return require(f"{DEBIAN_BINARIES}/initdb", "postgresql").parent


@dataclass
class Node:
    """One PostgreSQL server: primary or standby."""

    name: str
    port: int
    data_dir: Path
    process: subprocess.Popen | None = None

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=3"

    def query(self, sql: str, dbname: str = "postgres"):
        """Run ``sql`` (autocommit) and return its first row."""
        connection = psycopg2.connect(self.dsn(dbname))
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone() if cursor.description else None
        finally:
            connection.close()


@dataclass
class Cluster:
    """A primary and its standbys in one scratch directory that the ``postgres`` user owns."""

    bin_dir: Path
    ports: list[int]
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fitness-pg-")))
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        # initdb refuses to run as root: the servers run as the postgres user.
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        names = ["primary"] + [f"standby{n}" for n in range(1, len(self.ports))]
        self.nodes = [Node(n, p, self.root / n) for n, p in zip(names, self.ports, strict=True)]

    def start(self, database: str) -> None:
        """Create the primary with ``database``, clone the standbys from it, start them all."""
        primary, *standbys = self.nodes
        self._run("initdb", "-D", str(primary.data_dir), "-U", "postgres", "-A", "trust")
        with (primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(PRIMARY_SETTINGS)
        self.start_node(primary)
        primary.query(f"CREATE DATABASE {database}")
        for standby in standbys:
            self._run(
                "pg_basebackup", "-D", str(standby.data_dir), "-h", "127.0.0.1",
                "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
            )  # fmt: skip
            self.start_node(standby)
        self.require_sync(primary, standbys)

    def start_node(self, node: Node) -> None:
        """Start ``node``'s server in a process group of its own and wait until it answers."""
        command = [
            *self._as_postgres, str(self.bin_dir / "postgres"), "-D", str(node.data_dir),
            "-p", str(node.port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
            "-c", f"cluster_name={node.name}",
        ]  # fmt: skip
        with (self.root / f"{node.name}.log").open("ab") as log:
            node.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            try:
                node.query("SELECT 1")
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline or node.process.poll() is not None:
                    raise
                time.sleep(0.05)

    def kill(self, node: Node) -> None:
        """SIGKILL the server and every backend of it at once, as a crash would."""
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait(timeout=10)

    def require_sync(self, primary: Node, standbys: list[Node]) -> None:
        """Once ``standbys`` stream, make each commit wait until one of them has it on disk.

        So the most advanced standby has every commit the primary acknowledged. (Set after
        they stream: before that, every commit would wait.)
        """
        self.wait_streaming(primary, len(standbys))
        names = ", ".join(standby.name for standby in standbys)
        primary.query(f"ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ({names})'")
        primary.query("SELECT pg_reload_conf()")

    def fail_over(self, survivors: list[Node]) -> Node:
        """Promote the standby with the most WAL received; point the others at it."""
        lsns = {n.name: n.query("SELECT pg_last_wal_receive_lsn() - '0/0'")[0] for n in survivors}
        new_primary = max(survivors, key=lambda n: lsns[n.name])
        new_primary.query("SELECT pg_promote(wait => true, wait_seconds => 30)")
        for standby in survivors:
            if standby is not new_primary:
                conninfo = f"host=127.0.0.1 port={new_primary.port} user=postgres"
                standby.query(f"ALTER SYSTEM SET primary_conninfo = '{conninfo}'")
                standby.query("SELECT pg_reload_conf()")
        return new_primary

    def wait_streaming(self, primary: Node, standbys: int) -> None:
        """Wait until ``standbys`` standbys stream from ``primary``."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        while primary.query(sql)[0] < standbys:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{standbys} standbys not streaming from {primary.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Kill every server and remove the scratch directory."""
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_postgres, str(self.bin_dir / program), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
