"""Load: COPY each batch into a staging table, then merge it into the star schema.

Everything happens on the run's one connection and transaction: staging tables are temporary
(``ON COMMIT DROP``) and nothing is visible to readers until the run commits. A worker thread
loads batch n while the caller transforms batch n+1 (psycopg2 releases the GIL while
PostgreSQL works), so the two CPUs of a small machine both have work. ``etl.merges`` holds the
SQL.
"""

from __future__ import annotations

import io
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor

from psycopg2 import errors
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from etl.merges import APPEND_SESSIONS, REBUILD_DAILY, TARGETS

MAX_BATCHES_IN_FLIGHT = 2
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

    def create_staging(self) -> None:
        """Create this transaction's staging tables."""
        with self.conn.cursor() as cur:
            for target in TARGETS.values():
                cur.execute(f"CREATE TEMP TABLE {target.stage} ({target.columns}) ON COMMIT DROP")

    def submit(self, target: str, lines: list[str]) -> None:
        """Queue ``lines`` (COPY text) for ``target``; wait if too much is queued already."""
        if not lines:
            return
        self._in_flight.append(self._worker.submit(self._load, target, lines))
        while len(self._in_flight) > MAX_BATCHES_IN_FLIGHT:
            self._in_flight.popleft().result()

    def drain(self) -> None:
        """Wait until everything queued is merged; raise the first load error."""
        while self._in_flight:
            self._in_flight.popleft().result()

    def close(self) -> None:
        """Stop the worker, dropping what has not started."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def rebuild_daily(self) -> None:
        """Recount daily activity for the days this run's sessions touched."""
        with self.conn.cursor() as cur:
            for statement in REBUILD_DAILY:
                cur.execute(statement)

    def _load(self, name: str, lines: list[str]) -> None:
        with self.conn.cursor() as cur:
            if name == FRESH_SESSIONS:
                self._append_sessions(cur, lines)
            else:
                self._stage_and_merge(cur, name, lines)

    def _stage_and_merge(self, cur: Cursor, name: str, lines: list[str]) -> None:
        target = TARGETS[name]
        _copy(cur, target.stage, lines)
        if not target.merge:
            return
        cur.execute(target.merge, {"run_id": self.run_id})
        self.loaded[name] += cur.fetchone()[0]
        self._resolve(cur, name)
        cur.execute(f"TRUNCATE {target.stage}")

    def _resolve(self, cur: Cursor, name: str) -> None:
        """Drop the rejections of the staged rows: they load now."""
        if name in self.resolving:
            target = TARGETS[name]
            cur.execute(
                f"DELETE FROM rejected_rows r USING {target.stage} s"
                f" WHERE r.source = %s AND r.source_key = s.{target.key}",
                (name,),
            )

    def _append_sessions(self, cur: Cursor, lines: list[str]) -> None:
        """Insert new sessions; if one exists after all (clocks disagree), upsert the batch."""
        cur.execute("SAVEPOINT fresh_sessions")
        _copy(cur, TARGETS["sessions"].stage, lines)
        try:
            cur.execute(APPEND_SESSIONS)
        except errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT fresh_sessions")
            self._stage_and_merge(cur, "sessions", lines)
            return
        self.loaded["sessions"] += cur.rowcount
        cur.execute("RELEASE SAVEPOINT fresh_sessions")
        self._resolve(cur, "sessions")
        cur.execute(f"TRUNCATE {TARGETS['sessions'].stage}")


def _copy(cur: Cursor, table: str, lines: list[str]) -> None:
    payload = "".join(lines)
    # One read of the whole batch: psycopg2 reads 8 KiB at a time by default, taking the GIL
    # for each read, while the caller's thread wants it for transforming the next batch.
    cur.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(payload), len(payload) + 1)
