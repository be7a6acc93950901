"""Load: COPY each batch into a staging table, then merge it into the star schema.

Everything happens on the run's one connection and transaction: staging tables are temporary
(``ON COMMIT DROP``) and nothing is visible to readers until the run commits. A worker thread
loads batch n while the caller transforms batch n+1 (psycopg2 releases the GIL while
PostgreSQL works), so the two CPUs of a small machine both have work. ``etl.merges`` holds the
SQL.
"""

from __future__ import annotations

import io
import sys
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor

from psycopg2 import errors
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from etl.merges import (
    APPEND_SESSIONS,
    DAILY_CHANGES,
    DAILY_FROM_CHANGES,
    DAILY_FROM_FRESH,
    STAGING,
    TARGETS,
)

MAX_BATCHES_IN_FLIGHT = 2
LOADING_SWITCH_INTERVAL = 0.0005
"""Seconds the transform may hold the GIL while the loader waits (CPython's default: 0.005)."""
FRESH_SESSIONS = "fresh_sessions"
"""Sessions created after the last run's watermark: appended without an upsert."""


class Loader:
    """Stage and merge batches on the run's transaction, one batch behind the transform."""

    def __init__(self, conn: Connection, run_id: int, resolving: set[str]):
        self.conn = conn
        self.run_id = run_id
        # Sources that have rejected rows: a row of theirs that loads now is no longer rejected.
        self.resolving = resolving
        self.loaded: Counter[str] = Counter()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="etl-load")
        self._in_flight: deque[Future] = deque()
        # psycopg2 lets go of the GIL while PostgreSQL works but needs it back for each answer,
        # while the transform holds it: at the default 5 ms, PostgreSQL sat idle for about a
        # sixth of a big load (bench/etl_throughput.py). Put back by close().
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, LOADING_SWITCH_INTERVAL))

    def create_staging(self) -> None:
        """Create this transaction's staging tables."""
        with self.conn.cursor() as cur:
            cur.execute(";".join(STAGING))

    def submit(self, target: str, lines: list[str], distinct_days: bool = False) -> None:
        """Queue ``lines`` (COPY text) for ``target``; wait if too much is queued already.

        ``distinct_days``: fresh sessions that count on distinct (user, day, workout type).
        """
        if not lines:
            return
        self._in_flight.append(self._worker.submit(self._load, target, lines, distinct_days))
        while len(self._in_flight) > MAX_BATCHES_IN_FLIGHT:
            self._in_flight.popleft().result()

    def drain(self) -> None:
        """Wait until everything queued is merged; raise the first load error."""
        while self._in_flight:
            self._in_flight.popleft().result()

    def close(self) -> None:
        """Stop the worker, dropping what has not started."""
        self._worker.shutdown(wait=True, cancel_futures=True)
        sys.setswitchinterval(self._switch_interval)

    # Statements that need no answer of their own go together in one round trip: each answer
    # is a wait for the GIL (above).

    def _load(self, name: str, lines: list[str], distinct_days: bool) -> None:
        with self.conn.cursor() as cur:
            _copy(cur, TARGETS["sessions" if name == FRESH_SESSIONS else name].stage, lines)
            if name == FRESH_SESSIONS:
                self._append_sessions(cur, len(lines), distinct_days)
            elif name == "sessions":
                self._merge_sessions(cur)
            else:
                cur.execute(TARGETS[name].merge, self._params(name))
                self.loaded[name] += cur.fetchone()[0]
                cur.execute(self._emptying(name), self._params(name))

    def _append_sessions(self, cur: Cursor, count: int, distinct_days: bool) -> None:
        """Insert new sessions; if one exists after all (clocks disagree), upsert the batch."""
        try:
            cur.execute(
                f"SAVEPOINT fresh_sessions; {APPEND_SESSIONS}; {DAILY_FROM_FRESH[distinct_days]};"
                f" RELEASE SAVEPOINT fresh_sessions; {self._emptying('sessions')}",
                self._params("sessions"),
            )
        except errors.UniqueViolation:
            # The batch is still staged: the savepoint came after the COPY.
            cur.execute("ROLLBACK TO SAVEPOINT fresh_sessions; RELEASE SAVEPOINT fresh_sessions")
            self._merge_sessions(cur)
            return
        self.loaded["sessions"] += count

    def _merge_sessions(self, cur: Cursor) -> None:
        """Upsert the staged sessions, then move their days by what changed."""
        cur.execute(TARGETS["sessions"].merge)
        self.loaded["sessions"] += cur.fetchone()[0]
        cur.execute(
            f"{DAILY_FROM_CHANGES}; TRUNCATE {DAILY_CHANGES}; {self._emptying('sessions')}",
            self._params("sessions"),
        )

    def _emptying(self, name: str) -> str:
        """Return SQL that drops the rejections of the staged rows (they load now) and empties
        the staging table."""
        target = TARGETS[name]
        resolve = ""
        if name in self.resolving:
            resolve = (
                f"DELETE FROM rejected_rows r USING {target.stage} s"
                f" WHERE r.source = %(source)s AND r.source_key = s.{target.key}; "
            )
        return f"{resolve}TRUNCATE {target.stage}"

    def _params(self, name: str) -> dict[str, object]:
        return {"run_id": self.run_id, "source": name}


def _copy(cur: Cursor, table: str, lines: list[str]) -> None:
    payload = "".join(lines)
    # One read of the whole batch: psycopg2 reads 8 KiB at a time by default, taking the GIL
    # for each read, while the caller's thread wants it for transforming the next batch.
    cur.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(payload), len(payload) + 1)
