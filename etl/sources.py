"""Extract: read what changed since a watermark, in batches, from the services' stores.

Every source is read in (updated_at, key) order from the last position a run committed, up to a
cutoff a little in the past, so each row is read once per change and a run can stop anywhere.
SQL sources stream one query (a server-side cursor on PostgreSQL). MongoDB sources ask for one
batch at a time (sort + limit from the last position): the embedded engine returns whole result
lists, and on a real server the ``updated_at`` index answers each batch directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, Table, and_, or_, select

from etl import EtlError
from fitness import mongo

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


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Return ``moment`` as an aware UTC time (SQLite and the embedded engine give naive UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


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
        """Yield the rows changed after ``since`` and at or before ``until``, in order."""

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
    """A collection of the activity database (pymongo or the embedded engine)."""

    def __init__(self, name: str, db: Any, size: int):
        self.name = name
        self.db = db
        self.batch_size = size

    def batches(self, since: Watermark, until: dt.datetime) -> Iterator[Batch]:
        if not has_collection(self.db, self.name):
            return  # e.g. group_sessions before live group workouts save any
        position = since
        while True:
            rows = list(
                self.db[self.name].find(
                    _after(position, until),
                    sort=[("updated_at", 1), ("_id", 1)],
                    limit=self.batch_size,
                )
            )
            if not rows:
                return
            position = Watermark(as_utc(rows[-1]["updated_at"]), str(rows[-1]["_id"]))
            yield Batch(rows, position)
            if len(rows) < self.batch_size:
                return

    def fetch(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if not has_collection(self.db, self.name):
            return rows
        for start in range(0, len(keys), _FETCH_CHUNK):
            chunk = list(keys[start : start + _FETCH_CHUNK])
            rows += list(self.db[self.name].find({"_id": {"$in": chunk}}))
        return rows


def _after(position: Watermark, until: dt.datetime) -> dict[str, Any]:
    return {
        "$or": [
            {"updated_at": {"$gt": position.updated_at}},
            {"updated_at": position.updated_at, "_id": {"$gt": position.key}},
        ],
        "updated_at": {"$lte": until},
    }


def has_collection(db: Any, name: str) -> bool:
    """Tell whether collection ``name`` exists, without creating it (the embedded engine would)."""
    if isinstance(db, mongo.EmbeddedDatabase):
        return name in db.run(lambda raw: raw.list_collection_names(), exclusive=False)
    return bool(db.list_collection_names(filter={"name": name}))


# The services' modules are imported where needed: their packages load Flask and gRPC (about a
# second), which only ``run`` and ``schedule`` need to pay for.


def user_engine(settings: dict[str, Any]) -> Engine:
    """Return an engine on the user database, which must exist already."""
    from user_service import db as user_db

    url = settings["DATABASE_URL"] or user_db.default_url(settings["DATA_DIR"])
    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        raise SourceMissing(f"no user database at {url}: start the services or set DATABASE_URL")
    return user_db.make_engine(url)


def activity_db(settings: dict[str, Any]) -> Any:
    """Return the activity database, with the ETL's longer timeout on the embedded engine."""
    from activity_service.store import DATABASE_NAME

    db = mongo.connect(settings["MONGO_URL"], settings["DATA_DIR"], DATABASE_NAME)
    if isinstance(db, mongo.EmbeddedDatabase):
        # Range queries scan the whole collection there; give big stores time to answer.
        db.timeout = settings["ETL_SOURCE_TIMEOUT_SECONDS"]
    return db


def default_sources(settings: dict[str, Any]) -> list[Source]:
    """Return the sources in load order: users before what refers to them."""
    from user_service.models import Goal, User

    size = settings["ETL_BATCH_SIZE"]
    engine = user_engine(settings)
    activity = activity_db(settings)
    return [
        SqlSource("users", engine, User.__table__, USER_COLUMNS, size),
        SqlSource("goals", engine, Goal.__table__, GOAL_COLUMNS, size),
        MongoSource("sessions", activity, size),
        MongoSource("group_sessions", activity, size),
    ]
