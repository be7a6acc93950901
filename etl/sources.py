"""Extract: read what changed since a watermark, in batches, from the services' stores.

Every source is read from the last position a run committed, up to a cutoff a little in the
past, so each row is read once per change. A run commits once, at its end, with the highest
position it read. SQL sources stream one query in (updated_at, key) order (a server-side cursor on
PostgreSQL). MongoDB sources stream one unsorted cursor over the same range: MongoDB answers it
from the ``updated_at`` index; FerretDB filters ranges itself (it pushes down only equality), so
one pass over the collection is its best, where a query per batch would be a pass per batch.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, MetaData, Table, and_, or_, select
from sqlalchemy.exc import NoSuchTableError

from etl import EtlError
from fitness import mongo, sqldb
from fitness.clock import as_utc

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FETCH_CHUNK = 500

USER_COLUMNS = ("id", "username", "weight_kg", "created_at", "updated_at")
"""Never the password hash, nor the e-mail address: reports need neither."""

GOAL_COLUMNS = (
    "id",
    "user_id",
    "goal_type",
    "workout_type",
    "target_value",
    "target_date",
    "current_progress",
    "status",
    "achieved_at",
    "created_at",
    "updated_at",
)


class SourceMissing(EtlError):
    """A source store does not exist yet (the services never ran on this data directory)."""


@dataclass(frozen=True, order=True)
class Watermark:
    """A position in a source: everything up to this (updated_at, key) has been read."""

    updated_at: dt.datetime = EPOCH
    key: str = ""

    def as_json(self) -> dict[str, str]:
        return {"updated_at": self.updated_at.isoformat(), "key": self.key}


@dataclass
class Batch:
    """Rows read together, and the source's position after them."""

    rows: list[dict[str, Any]]
    position: Watermark


class Source(Protocol):
    """What the pipeline needs of a source."""

    name: str

    def batches(self, since: Watermark, until: dt.datetime) -> Iterator[Batch]:
        """Yield the rows changed after ``since`` and at or before ``until``.

        Each batch carries the highest position among its rows; the order of rows across batches
        is the source's (the run keeps the highest position it saw).
        """

    def fetch(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """Return the current rows with these keys (to retry rejected ones)."""


class SqlSource:
    """A table of the user database, read through SQLAlchemy Core (read-only)."""

    def __init__(self, name: str, engine: Engine, table: Table, columns: Sequence[str], size: int):
        self.name = name
        self.engine = engine
        self.table = table
        self.columns = [table.c[column] for column in columns]
        self.batch_size = size

    def batches(self, since: Watermark, until: dt.datetime) -> Iterator[Batch]:
        t = self.table.c
        after = or_(
            t.updated_at > since.updated_at,
            and_(t.updated_at == since.updated_at, t.id > since.key),
        )
        query = (
            select(*self.columns).where(after, t.updated_at <= until).order_by(t.updated_at, t.id)
        )
        with self._reading() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch_size)
            for part in result.execute(query).partitions():
                rows = [dict(row._mapping) for row in part]
                last = rows[-1]
                yield Batch(rows, Watermark(as_utc(last["updated_at"]), last["id"]))

    def fetch(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with self._reading() as conn:
            for start in range(0, len(keys), _FETCH_CHUNK):
                chunk = list(keys[start : start + _FETCH_CHUNK])
                query = select(*self.columns).where(self.table.c.id.in_(chunk))
                rows += [dict(row._mapping) for row in conn.execute(query)]
        return rows

    def _reading(self):
        conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            conn = conn.execution_options(postgresql_readonly=True)
        return conn


class MongoSource:
    """A collection of the activity database, on MongoDB or FerretDB."""

    def __init__(self, name: str, db: Any, size: int):
        self.name = name
        self.db = db
        self.batch_size = size

    def batches(self, since: Watermark, until: dt.datetime) -> Iterator[Batch]:
        if not has_collection(self.db, self.name):
            return  # e.g. group_sessions before live group workouts save any
        cursor = self.db[self.name].find(_after(since, until), batch_size=self.batch_size)
        with cursor:
            while rows := list(itertools.islice(cursor, self.batch_size)):
                yield Batch(rows, max(_position(row) for row in rows))

    def fetch(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if not has_collection(self.db, self.name):
            return rows
        for start in range(0, len(keys), _FETCH_CHUNK):
            chunk = list(keys[start : start + _FETCH_CHUNK])
            rows += list(self.db[self.name].find({"_id": {"$in": chunk}}))
        return rows


def _position(row: dict[str, Any]) -> Watermark:
    return Watermark(as_utc(row["updated_at"]), str(row["_id"]))


def _after(position: Watermark, until: dt.datetime) -> dict[str, Any]:
    return {
        "$or": [
            {"updated_at": {"$gt": position.updated_at}},
            {"updated_at": position.updated_at, "_id": {"$gt": position.key}},
        ],
        "updated_at": {"$lte": until},
    }


def has_collection(db: Any, name: str) -> bool:
    """Tell whether collection ``name`` exists, without creating it."""
    return bool(db.list_collection_names(filter={"name": name}))


def user_engine(settings: dict[str, Any]) -> Engine:
    """Return an engine on the user database, which must exist already."""
    url = settings["DATABASE_URL"] or sqldb.default_user_database_url(settings["DATA_DIR"])
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        raise SourceMissing(f"no user database at {url}: start the services or set DATABASE_URL")
    return sqldb.make_engine(url)


def activity_db(settings: dict[str, Any]) -> Any:
    """Return the activity database, with the ETL's longer timeout per network read.

    FerretDB finds the first batch of a range only after scanning past what it skips, so a big
    store may take a while to answer it.
    """
    if not mongo.is_server_url(settings["MONGO_URL"]):
        raise SourceMissing(mongo.NOT_CONFIGURED)
    timeout_ms = int(settings["ETL_SOURCE_TIMEOUT_SECONDS"] * 1000)
    return mongo.connect(settings["MONGO_URL"], mongo.ACTIVITY_DATABASE, socketTimeoutMS=timeout_ms)


def stored_table(engine: Engine, name: str) -> Table:
    """Return table ``name`` as the database has it (the ETL reads the stored shape, which the
    user service's migrations keep, not the service's classes)."""
    try:
        return Table(name, MetaData(), autoload_with=engine)
    except NoSuchTableError:
        raise SourceMissing(f"the user database has no {name} table: migrate it first") from None


def default_sources(settings: dict[str, Any]) -> list[Source]:
    """Return the sources in load order: users before what refers to them."""
    size = settings["ETL_BATCH_SIZE"]
    engine = user_engine(settings)
    activity = activity_db(settings)
    return [
        SqlSource("users", engine, stored_table(engine, "users"), USER_COLUMNS, size),
        SqlSource("goals", engine, stored_table(engine, "goals"), GOAL_COLUMNS, size),
        MongoSource("sessions", activity, size),
        MongoSource("group_sessions", activity, size),
    ]
