"""The one way into MongoDB: pymongo against a real server, or an embedded engine on disk.

With a ``mongodb://`` (or ``mongodb+srv://``) URL the services use pymongo with retryable writes.
Without one they use ``litemongo`` (a pymongo-compatible engine over SQLite files) under
``DATA_DIR/mongo``, through the same collection methods. litemongo alone loses updates when
two processes read-modify-write at once, and its client can't cross threads. So each process runs
every embedded operation on one dedicated thread that owns the client, holding a file lock on the
database (shared for reads, exclusive for writes): each operation is then atomic across threads
and replica processes, as it is on a real server. One client per process also keeps litemongo's
in-memory query indexes warm; they are rebuilt only after another process writes.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pymongo

SERVER_SELECTION_TIMEOUT_MS = 3000
SOCKET_TIMEOUT_MS = 5000
OPERATION_TIMEOUT_SECONDS = 10.0

_WRITE_METHODS = {
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "find_one_and_update",
    "find_one_and_delete",
    "find_one_and_replace",
    "create_index",
    "drop",
}
_READ_METHODS = {"find_one", "count_documents", "distinct", "index_information"}
_CURSOR_METHODS = {"find", "aggregate"}


def is_server_url(url: str) -> bool:
    """Tell whether ``url`` names a real MongoDB deployment."""
    return url.startswith(("mongodb://", "mongodb+srv://"))


def connect(url: str, data_dir: str, database: str) -> Any:
    """Return the database ``database``: on the server at ``url``, or embedded under data_dir."""
    if is_server_url(url):
        client = pymongo.MongoClient(
            url,
            retryWrites=True,
            serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            connectTimeoutMS=SERVER_SELECTION_TIMEOUT_MS,
            socketTimeoutMS=SOCKET_TIMEOUT_MS,
            tz_aware=True,
        )
        return client[database]
    return EmbeddedDatabase(Path(data_dir) / "mongo", database)


def ping(db: Any) -> None:
    """Raise unless the database answers."""
    db.command("ping")


class EmbeddedDatabase:
    """A litemongo database made safe for many threads and processes (see the module doc)."""

    def __init__(self, root: Path, name: str, timeout: float = OPERATION_TIMEOUT_SECONDS):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.name = name
        self.timeout = timeout
        self._lock_path = root / f"{name}.lock"
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._setup_lock = threading.Lock()
        self._fd = -1
        self._client: Any = None

    def __getitem__(self, name: str) -> EmbeddedCollection:
        return EmbeddedCollection(self, name)

    def get_collection(self, name: str) -> EmbeddedCollection:
        return self[name]

    def command(self, name: str) -> dict[str, Any]:
        """Answer ``ping`` after touching the store, as a server would."""
        if name != "ping":
            raise NotImplementedError(f"embedded engine has no command {name!r}")
        self.run(lambda db: db.list_collection_names(), exclusive=False)
        return {"ok": 1.0}

    def run(self, operation: Callable[[Any], Any], exclusive: bool) -> Any:
        """Run ``operation(db)`` on the store thread under the file lock and return its result."""
        future = self._store_thread().submit(self._run_locked, operation, exclusive)
        return future.result(timeout=self.timeout)

    def _store_thread(self) -> ThreadPoolExecutor:
        with self._setup_lock:
            if self._executor is None or self._executor_pid != os.getpid():
                # A forked child must not reuse its parent's thread or client.
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedded-mongo")
                self._executor_pid = os.getpid()
                self._fd, self._client = -1, None
            return self._executor

    def _run_locked(self, operation: Callable[[Any], Any], exclusive: bool) -> Any:
        if self._client is None:
            from litemongo import MongoClient  # imported lazily: only the default needs it

            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            self._client = MongoClient(str(self.root))
        fcntl.flock(self._fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            return operation(self._client[self.name])
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class EmbeddedCollection:
    """A collection whose every pymongo method runs on the store thread under the lock."""

    def __init__(self, database: EmbeddedDatabase, name: str):
        self._database = database
        self.name = name

    def __getattr__(self, method: str):
        if method in _WRITE_METHODS:
            return self._call(method, exclusive=True, materialise=False)
        if method in _READ_METHODS:
            return self._call(method, exclusive=False, materialise=False)
        if method in _CURSOR_METHODS:
            return self._call(method, exclusive=False, materialise=True)
        raise AttributeError(f"embedded collection does not support {method!r}")

    def _call(self, method: str, exclusive: bool, materialise: bool):
        def call(*args, **kwargs):
            def operation(db):
                result = getattr(db[self.name], method)(*args, **kwargs)
                # Cursors are read inside the lock; callers only iterate them, as with pymongo.
                return list(result) if materialise else result

            return self._database.run(operation, exclusive)

        return call
