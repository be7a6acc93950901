"""One ETL run: extract from each source's watermark, transform, load, commit once.

The run holds an advisory lock so two runs never overlap, and does all its loading in one
transaction: a run that fails or is killed leaves the warehouse as the previous run left it.
Its ``etl_runs`` row is written on a second connection first, so a run that dies is still on
record (the next run marks it ``abandoned``); the final counts, the new watermarks and the
data commit together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg2
from psycopg2.extensions import connection as Connection

from etl import EtlError, schema
from etl.load import FRESH_SESSIONS, Loader
from etl.sources import EPOCH, Source, Watermark
from etl.transform import plain, transform
from etl.warehouse import Warehouse
from fitness.workouts import WORKOUT_METS

log = logging.getLogger(__name__)

RETRY_LIMIT = 100_000


class RunInProgress(EtlError):
    """Another ETL run holds the warehouse."""


@dataclass
class SourceStats:
    """What a run did with one source."""

    read: int = 0
    loaded: int = 0
    rejected: int = 0
    retried: int = 0
    extract_seconds: float = 0.0
    transform_seconds: float = 0.0


@dataclass
class RunResult:
    """The outcome of a run, as recorded in ``etl_runs``."""

    run_id: int
    seconds: float
    sources: dict[str, SourceStats] = field(default_factory=dict)
    watermarks: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        return sum(stats.loaded for stats in self.sources.values())

    @property
    def read(self) -> int:
        return sum(stats.read + stats.retried for stats in self.sources.values())


Progress = Callable[[str, SourceStats], None]


@dataclass
class RunOptions:
    """How to run: re-read everything, up to when, and the hooks."""

    full: bool = False
    until: dt.datetime | None = None
    settle_seconds: float = 10.0
    progress: Progress | None = None
    pause_before_commit: float = 0.0


def run(warehouse: Warehouse, sources: Sequence[Source], options: RunOptions) -> RunResult:
    """Run the ETL once over ``sources`` (users first) into ``warehouse``."""
    until = options.until or dt.datetime.now(dt.UTC) - dt.timedelta(seconds=options.settle_seconds)
    conn = warehouse.connect()
    book = warehouse.connect(autocommit=True)
    try:
        schema.migrate(conn)
        return _Run(conn, book, sources, options, until).execute()
    finally:
        conn.close()
        book.close()


class _Run:
    def __init__(self, conn, book, sources, options: RunOptions, until: dt.datetime):
        self.conn: Connection = conn
        self.book: Connection = book
        self.sources: Sequence[Source] = sources
        self.options = options
        self.until = until
        self.stats = {source.name: SourceStats() for source in sources}
        self.positions: dict[str, Watermark] = {}
        self.stored: dict[str, Watermark] = {}
        self.dates: set[int] = set()
        self.users: set[str] | None = None
        self.run_id = 0
        self.started = time.perf_counter()

    def execute(self) -> RunResult:
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (schema.RUN_LOCK,))
            if not cur.fetchone()[0]:
                self.conn.rollback()
                raise RunInProgress("another ETL run is in progress")
        self.run_id = self._record_start()
        try:
            result = self._load_everything()
        except Exception as exc:
            with contextlib.suppress(psycopg2.Error):  # a broken connection rolls back anyway
                self.conn.rollback()
            self._record_failure(exc)
            raise
        return result

    def _load_everything(self) -> RunResult:
        loader = Loader(self.conn, self.run_id, self._sources_with_rejections())
        try:
            loader.create_staging()
            self._prepare()
            for source in self.sources:
                self._extract(source, loader)
                if source.name == "users":
                    self._retry_unknown_users(loader)
            loader.drain()
        finally:
            loader.close()
        for name, count in loader.loaded.items():
            if name in self.stats:
                self.stats[name].loaded = count
        return self._finish()

    def _record_start(self) -> int:
        with self.book.cursor() as cur:
            cur.execute(
                "INSERT INTO etl_runs (extract_until, full_reload) VALUES (%s, %s)"
                " RETURNING run_id",
                (self.until, self.options.full),
            )
            return cur.fetchone()[0]

    def _record_failure(self, exc: Exception) -> None:
        with self.book.cursor() as cur:
            cur.execute(
                "UPDATE etl_runs SET outcome = 'failed', finished_at = clock_timestamp(),"
                " error = %s WHERE run_id = %s",
                (f"{type(exc).__name__}: {exc}"[:2000], self.run_id),
            )

    def _sources_with_rejections(self) -> set[str]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT DISTINCT source FROM rejected_rows")
            return {row[0] for row in cur.fetchall()}

    def _prepare(self) -> None:
        """Mark runs that died as abandoned, refresh the workout types, read the watermarks."""
        with self.conn.cursor() as cur:
            # We hold the run lock, so any other 'running' run is dead.
            cur.execute(
                "UPDATE etl_runs SET outcome = 'abandoned'"
                " WHERE outcome = 'running' AND run_id <> %s",
                (self.run_id,),
            )
            cur.execute(
                "INSERT INTO dim_workout_type AS t (workout_type, met)"
                " SELECT * FROM unnest(%s::text[], %s::numeric[])"
                " ON CONFLICT (workout_type) DO UPDATE SET met = excluded.met"
                " WHERE t.met IS DISTINCT FROM excluded.met",
                (list(WORKOUT_METS), [str(met) for met in WORKOUT_METS.values()]),
            )
            cur.execute("SELECT source, updated_at, last_key FROM etl_watermarks")
            self.stored = {name: Watermark(at, key) for name, at, key in cur.fetchall()}
        for source in self.sources:
            stored = self.stored.get(source.name, Watermark())
            self.positions[source.name] = Watermark() if self.options.full else stored

    def _extract(self, source: Source, loader: Loader) -> None:
        stats = self.stats[source.name]
        users = self._known_users(source.name, loader)
        batches = source.batches(self.positions[source.name], self.until)
        while True:
            began = time.perf_counter()
            batch = next(batches, None)
            stats.extract_seconds += time.perf_counter() - began
            if batch is None:
                return
            self._take(source.name, batch.rows, users, loader, stats, self._fresh_after(source))
            stats.read += len(batch.rows)
            self.positions[source.name] = max(self.positions[source.name], batch.position)
            if self.options.progress:
                self.options.progress(source.name, stats)

    def _fresh_after(self, source: Source) -> int:
        """Return when (epoch ms) the last run read up to: rows created later are new to it."""
        stored = self.stored.get(source.name, Watermark()).updated_at
        return (stored - EPOCH) // dt.timedelta(milliseconds=1)

    def _take(self, name, rows, users, loader, stats, fresh_after: int | None = None) -> None:
        began = time.perf_counter()
        out = transform(name, rows, users, fresh_after)
        stats.transform_seconds += time.perf_counter() - began
        stats.rejected += len(out.rejections)
        self.dates |= out.dates
        loader.submit(name, out.lines)
        loader.submit(FRESH_SESSIONS, out.fresh, out.distinct_days)
        loader.submit("rejected", out.rejections)

    def _known_users(self, name: str, loader: Loader) -> set[str]:
        if name == "users":
            return set()
        if self.users is None:
            loader.drain()  # the users this run loaded must be in dim_user first
            with self.conn.cursor() as cur:
                cur.execute("SELECT user_id FROM dim_user")
                # Rows that refer to a user go to COPY as they are: only plain ids may match.
                self.users = {uid for (uid,) in cur.fetchall() if plain(uid)}
        return self.users

    def _retry_unknown_users(self, loader: Loader) -> None:
        """Give rows rejected for an unknown user another go: their user may have arrived."""
        loader.drain()  # the loader's thread must be done with the connection before we use it
        if not loader.loaded["users"]:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT source, array_agg(source_key ORDER BY source_key) FROM rejected_rows"
                " WHERE reason_code = 'unknown_user' GROUP BY source"
            )
            keys = dict(cur.fetchall())
        for source in self.sources:
            if source.name != "users" and keys.get(source.name):
                rows = source.fetch(keys[source.name][:RETRY_LIMIT])
                users = self._known_users(source.name, loader)
                self._take(source.name, rows, users, loader, self.stats[source.name])
                self.stats[source.name].retried += len(rows)

    def _finish(self) -> RunResult:
        with self.conn.cursor() as cur:
            self._add_dates(cur)
            self._save_watermarks(cur)
            result = RunResult(self.run_id, time.perf_counter() - self.started, self.stats)
            result.watermarks = {name: wm.as_json() for name, wm in self.positions.items()}
            cur.execute(
                "UPDATE etl_runs SET outcome = 'succeeded', finished_at = clock_timestamp(),"
                " counts = %s, watermarks = %s WHERE run_id = %s",
                (json.dumps(_counts(self.stats)), json.dumps(result.watermarks), self.run_id),
            )
        self._pause_for_tests()
        self.conn.commit()
        result.seconds = time.perf_counter() - self.started
        return result

    def _add_dates(self, cur) -> None:
        if not self.dates:
            return
        cur.execute(
            """
            INSERT INTO dim_date
            SELECT key, day, extract(year FROM day), extract(month FROM day),
                   extract(day FROM day), extract(isoyear FROM day), extract(week FROM day),
                   extract(isodow FROM day), date_trunc('week', day)::date,
                   extract(isodow FROM day) >= 6
            FROM (SELECT key, to_date(key::text, 'YYYYMMDD') AS day
                  FROM unnest(%s::integer[]) AS key) AS days
            ON CONFLICT (date_key) DO NOTHING
            """,
            (sorted(self.dates),),
        )

    def _save_watermarks(self, cur) -> None:
        for name, position in self.positions.items():
            if self.stats[name].read:
                cur.execute(
                    "INSERT INTO etl_watermarks AS w (source, updated_at, last_key)"
                    " VALUES (%s, %s, %s) ON CONFLICT (source) DO UPDATE"
                    " SET updated_at = excluded.updated_at, last_key = excluded.last_key"
                    " WHERE (w.updated_at, w.last_key) < (excluded.updated_at, excluded.last_key)",
                    (name, position.updated_at, position.key),
                )

    def _pause_for_tests(self) -> None:
        if self.options.pause_before_commit > 0:
            print(f"pausing {self.options.pause_before_commit}s before commit", flush=True)
            time.sleep(self.options.pause_before_commit)


def _counts(stats: dict[str, SourceStats]) -> dict[str, Any]:
    return {
        name: {key: round(value, 3) for key, value in asdict(item).items()}
        for name, item in stats.items()
    }
