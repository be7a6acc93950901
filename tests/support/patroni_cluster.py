"""A real Patroni cluster as local processes, configured from compose's own ``patroni.yml``.

One etcd (Debian's ``etcd-server``; compose runs three) and three Patroni nodes (from PyPI)
running the Debian PostgreSQL server. Each node's configuration is ``deploy/patroni/patroni.yml``
with only what differs between a container and this machine replaced (``LOCAL_KEYS``: names,
addresses, paths); the DCS timing, synchronous mode, replication and bootstrap are the file's.
Like compose, the passwords come from secret files: the superuser's and the replicator's through
the environment of each Patroni process, the application roles' read by ``post_bootstrap.sh``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import requests
import yaml

from devstack.stack import free_port
from tests.support import REPO_ROOT
from tests.support.client import wait_until
from tests.support.system_packages import require

PATRONI_YML = REPO_ROOT / "deploy" / "patroni" / "patroni.yml"
POST_BOOTSTRAP = REPO_ROOT / "deploy" / "patroni" / "post_bootstrap.sh"
PATRONI_REQUIREMENTS = REPO_ROOT / "deploy" / "patroni" / "requirements.txt"
# Patroni's own virtualenv (``make servers``), on Debian's Python: it runs as the postgres user,
# who cannot reach an interpreter under /root.
PATRONI_HOME = Path(os.environ.get("FITNESS_PATRONI_HOME", "/opt/fitness-patroni"))
# What a node's configuration may change from patroni.yml: where things are on this machine.
LOCAL_KEYS = {
    ("name",),
    ("restapi", "listen"),
    ("restapi", "connect_address"),
    ("etcd3", "hosts"),
    ("postgresql", "listen"),
    ("postgresql", "connect_address"),
    ("postgresql", "data_dir"),
    ("postgresql", "bin_dir"),
    ("postgresql", "pgpass"),
    ("postgresql", "parameters", "unix_socket_directories"),
    ("bootstrap", "post_bootstrap"),
}
SECRETS = ("pg_superuser_password", "pg_replication_password", "pg_app_password")
SECRETS += ("pg_etl_password", "patroni_restapi_password")
RESTAPI_USERNAME = "patroni"  # as deploy/patroni/entrypoint.sh sets it
READY_TIMEOUT_SECONDS = 90.0
HTTP_TIMEOUT_SECONDS = 2.0


def etcd_binary() -> Path:
    """Return Debian's etcd server (installed on CI if absent, else the test skips)."""
    return require("/usr/bin/etcd", "etcd-server")


def patroni_binary() -> Path:
    """Return Patroni, installed from ``deploy/patroni/requirements.txt`` (as the image has it).

    ``make servers`` installs it; CI does it here if it did not. Elsewhere the test skips.
    """
    patroni = PATRONI_HOME / "bin" / "patroni"
    if not patroni.exists() and os.environ.get("CI") == "true" and _can_make_virtualenvs():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(PATRONI_HOME)], check=True)
        pip = [str(PATRONI_HOME / "bin" / "pip"), "install", "-q", "-r", str(PATRONI_REQUIREMENTS)]
        subprocess.run(pip, check=True, timeout=600)
    if not patroni.exists():
        pytest.skip(f"{patroni} not found: make servers installs it")
    return patroni


def _can_make_virtualenvs() -> bool:
    """Return whether Debian's Python can make a virtualenv (python3-venv installed)."""
    python = Path("/usr/bin/python3")
    check = [str(python), "-c", "import ensurepip"]
    return python.exists() and subprocess.run(check, check=False).returncode == 0


def postgres_binaries() -> Path:
    """Return the newest Debian PostgreSQL server's bin directory (as ``require`` finds it)."""
    return require("/usr/lib/postgresql/*/bin/initdb", "postgresql").parent


def node_config(base: dict[str, Any], local: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """Return ``base`` (patroni.yml) with ``local`` values set; refuse any other key."""
    unknown = set(local) - LOCAL_KEYS
    if unknown:
        raise ValueError(f"not a per-machine setting: {sorted(unknown)}")
    config = copy.deepcopy(base)
    for path, value in local.items():
        parent = config
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        parent[path[-1]] = value
    return config


def changed_keys(base: Any, config: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Return the key paths at which ``config`` differs from ``base``."""
    if isinstance(base, dict) and isinstance(config, dict):
        keys = set(base) | set(config)
        return {p for k in keys for p in changed_keys(base.get(k), config.get(k), (*path, k))}
    return set() if base == config else {path}


@dataclass
class Member:
    """One Patroni node and the PostgreSQL server it runs."""

    name: str
    pg_port: int
    api_port: int
    process: subprocess.Popen | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


@dataclass
class PatroniCluster:
    """etcd and three Patroni members in one scratch directory the ``postgres`` user owns."""

    names: tuple[str, ...] = ("pg1", "pg2", "pg3")
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fitness-patroni-")))
    members: list[Member] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)
    etcd: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        # What it runs, found (or installed on CI) before anything is made: else the test skips.
        self.binaries = (etcd_binary(), postgres_binaries(), patroni_binary())
        # PostgreSQL refuses to run as root: Patroni and its servers run as postgres.
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
        self.members = [Member(name, free_port(), free_port()) for name in self.names]
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.secrets = self.root / "secrets"
        self.secrets.mkdir()
        for secret in SECRETS:
            self.passwords[secret] = os.urandom(12).hex()
            (self.secrets / secret).write_text(self.passwords[secret])
        # The bootstrap script as compose mounts it, where postgres may read it (a clone under
        # /root could not be).
        self.post_bootstrap = self.root / POST_BOOTSTRAP.name
        shutil.copyfile(POST_BOOTSTRAP, self.post_bootstrap)
        if self._as_postgres:
            for path in (self.secrets, *self.secrets.iterdir(), self.post_bootstrap):
                shutil.chown(path, "postgres")

    def start(self) -> None:
        """Start etcd, then every member; return once there is a leader and two streaming
        replicas."""
        self._start_etcd()
        base = yaml.safe_load(PATRONI_YML.read_text())
        for member in self.members:
            config = node_config(base, self._local(member))
            path = self.root / f"{member.name}.yml"
            path.write_text(yaml.safe_dump(config))
            member.process = self._spawn(member.name, [self._patroni(), str(path)])
        self.wait_healthy(len(self.members))

    def _local(self, member: Member) -> dict[tuple[str, ...], Any]:
        return {
            ("name",): member.name,
            ("restapi", "listen"): f"127.0.0.1:{member.api_port}",
            ("restapi", "connect_address"): f"127.0.0.1:{member.api_port}",
            ("etcd3", "hosts"): f"127.0.0.1:{self.etcd_port}",
            ("postgresql", "listen"): f"127.0.0.1:{member.pg_port}",
            ("postgresql", "connect_address"): f"127.0.0.1:{member.pg_port}",
            ("postgresql", "data_dir"): str(self.root / member.name),
            ("postgresql", "bin_dir"): str(self.binaries[1]),
            ("postgresql", "pgpass"): str(self.root / f"{member.name}.pgpass"),
            ("postgresql", "parameters", "unix_socket_directories"): str(self.root),
            ("bootstrap", "post_bootstrap"): f"sh {self.post_bootstrap}",
        }

    def _patroni(self) -> str:
        return str(self.binaries[2])

    def _env(self) -> dict[str, str]:
        """The environment compose and its entrypoint give Patroni: users, and passwords read
        from the secret files; ``SECRETS_DIR`` tells post_bootstrap.sh where its files are."""
        return {
            **os.environ,
            "PATRONI_SUPERUSER_USERNAME": "postgres",
            "PATRONI_SUPERUSER_PASSWORD": self.passwords["pg_superuser_password"],
            "PATRONI_REPLICATION_USERNAME": "replicator",
            "PATRONI_REPLICATION_PASSWORD": self.passwords["pg_replication_password"],
            "PATRONI_RESTAPI_USERNAME": RESTAPI_USERNAME,
            "PATRONI_RESTAPI_PASSWORD": self.passwords["patroni_restapi_password"],
            "SECRETS_DIR": str(self.secrets),
        }

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        command = [
            str(self.binaries[0]), "--name", "etcd1", "--data-dir", str(self.root / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"etcd1={peer}",
        ]  # fmt: skip
        self.etcd = self._spawn("etcd", command, as_postgres=False)
        self._wait(lambda: _get(f"{client}/health") is not None, "etcd")

    def _spawn(self, name: str, command: list[str], as_postgres: bool = True) -> subprocess.Popen:
        prefix = self._as_postgres if as_postgres else []
        with (self.root / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [*prefix, *command],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.root,
                start_new_session=True,  # the node and its PostgreSQL die together
            )

    def cluster(self) -> list[dict[str, Any]]:
        """Return the members as any live member's REST API reports them (``GET /cluster``)."""
        for member in self.members:
            if member.process is not None and member.process.poll() is None:
                answer = _get(f"{member.api}/cluster")
                if answer is not None:
                    return answer.get("members", [])
        return []

    def leader(self) -> Member | None:
        """Return the member that holds the leader lock, if one does."""
        names = [m["name"] for m in self.cluster() if m.get("role") == "leader"]
        return next((m for m in self.members if m.name in names), None)

    def wait_healthy(self, members: int, timeout: float = READY_TIMEOUT_SECONDS) -> Member:
        """Wait for a running leader, ``members - 1`` streaming replicas and, as patroni.yml
        asks for synchronous mode, a synchronous standby among them; return the leader.

        (A leader lost before it has named its synchronous standby leaves no node that may be
        promoted without risking a commit: Patroni then waits rather than lose data.)
        """

        def healthy() -> bool:
            states = self.cluster()
            leaders = [m for m in states if m.get("role") == "leader" and m["state"] == "running"]
            streaming = [m for m in states if m.get("state") == "streaming"]
            synchronous = [m for m in streaming if m.get("role") == "sync_standby"]
            return len(leaders) == 1 and len(streaming) >= members - 1 and len(synchronous) == 1

        self._wait(healthy, "a leader and its replicas", timeout)
        leader = self.leader()
        assert leader is not None
        return leader

    def kill(self, member: Member) -> None:
        """SIGKILL the member's Patroni and PostgreSQL at once, as losing its machine would.

        PostgreSQL runs in a session of its own, so it is killed by its postmaster's pid; its
        backends follow their postmaster."""
        assert member.process is not None
        postmaster = self._postmaster_pid(member)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(member.process.pid, signal.SIGKILL)
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
        member.process.wait(timeout=10)

    def _postmaster_pid(self, member: Member) -> int | None:
        """Return the pid of the member's running postmaster, if one runs (a stale
        postmaster.pid may name a pid reused by another process: that one is not ours)."""
        data_dir = self.root / member.name
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        return pid if str(data_dir).encode() in command else None

    def url(self, database: str = "fitness", user: str = "fitness") -> str:
        """Return the URL the services get (its password apart): every member's address, and
        libpq's ``target_session_attrs=read-write`` to find the primary among them."""
        hosts = "&".join(f"host=127.0.0.1:{m.pg_port}" for m in self.members)
        return f"postgresql+psycopg2://{user}@/{database}?{hosts}&target_session_attrs=read-write"

    def query(self, member: Member, sql: str, database: str = "fitness") -> Any:
        """Run ``sql`` on ``member`` as the superuser; return the first row."""
        connection = psycopg2.connect(
            host="127.0.0.1",
            port=member.pg_port,
            user="postgres",
            password=self.passwords["pg_superuser_password"],
            dbname=database,
            connect_timeout=3,
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()
        finally:
            connection.close()

    def stop(self) -> None:
        """Kill every process (a member's PostgreSQL too, whether its Patroni still runs or
        not) and remove the scratch directory."""
        for member in self.members:
            if member.process is not None:
                self.kill(member)
        if self.etcd is not None and self.etcd.poll() is None:
            os.killpg(self.etcd.pid, signal.SIGKILL)
            self.etcd.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of every process's log (for a failure message)."""
        parts = []
        for path in sorted(self.root.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append("\n".join([f"--- {path.name}", *tail]))
        return "\n".join(parts)

    def _wait(self, condition, what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        if not wait_until(condition, timeout):
            raise TimeoutError(f"no {what} after {timeout:.0f} s\n{self.log_tail()}")


def post_status(url: str, password: str | None = None) -> int:
    """POST to ``url`` (as the REST API's user with ``password``) and return the status."""
    auth = (RESTAPI_USERNAME, password) if password is not None else None
    return requests.post(url, json={}, auth=auth, timeout=HTTP_TIMEOUT_SECONDS).status_code


def _get(url: str) -> Any:
    """GET ``url`` and return its JSON, or None if it does not answer."""
    try:
        return requests.get(url, timeout=HTTP_TIMEOUT_SECONDS).json()
    except (requests.RequestException, ValueError):
        return None
