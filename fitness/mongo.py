"""The one way into the document store: pymongo against a server that speaks the MongoDB protocol.

Locally that server is FerretDB (``devstack.docstore`` runs it); deployed, a MongoDB replica set.
Either way the services get a ``mongodb://`` URL, one long-lived client per process (pymongo's
pool is thread-safe), retryable writes where the server supports them, and a timeout on every
step of every operation. There is no embedded fallback: without a URL nothing starts.

Every update goes through :func:`update`, which bumps the document's revision (:func:`revised`)
and sends it again while it loses races (:func:`conflict_safe`). MongoDB applies each
single-document update atomically and retries its own write conflicts; FerretDB v1 does not (it
reads, changes and writes back a document in separate steps). The local store therefore refuses
a write whose revision is stale (``devstack.docstore.STORE_TRIGGERS``), and the write is simply
sent again: it reads afresh.

Many documents known by id are read with :func:`find_each` and changed with :func:`update_each`,
never with ``{"_id": {"$in": ids}}``: FerretDB v1 pushes only equality down to PostgreSQL, so an
``$in`` decodes the whole collection in Go (37 ms for 20 ids among 2,000 documents, and it grows
with the collection), while an ``_id`` equality is one index lookup on either store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pymongo
import tenacity
from pymongo.errors import BulkWriteError, ConnectionFailure, OperationFailure

from fitness.errors import Unavailable

ACTIVITY_DATABASE = "activity"
"""The activity service's database: its own, and the ETL reads it (docs/architecture.md)."""
SERVER_SELECTION_TIMEOUT_MS = 3000
CONNECT_TIMEOUT_MS = 3000
SOCKET_TIMEOUT_MS = 10_000
MAX_POOL_SIZE = 50
REVISION = "_rev"
# How long a write may keep losing races before the client gets a 503 (16 writers on one
# document settle within about a second).
WRITE_CONFLICT_SECONDS = 5.0
_DUPLICATE_KEY = 11000
_WRITE_CONFLICT = 112  # MongoDB's code; FerretDB reports PostgreSQL's SQLSTATE in the message
_FERRETDB_CONFLICT = "SQLSTATE 40001"
# Server-side codes that mean "the store can't serve now", not "the request is wrong":
# InternalError (how FerretDB reports its PostgreSQL being down), host unreachable/not found,
# network timeout, shutdown in progress, primary stepped down, time limit exceeded, interrupted
# at shutdown or by a replica-set change, and MaxTimeMSExpired.
_OUTAGE_CODES = frozenset({1, 6, 7, 50, 89, 91, 189, 262, 11600, 11602})

Result = TypeVar("Result")


NOT_CONFIGURED = "FITNESS_MONGO_URL must be a mongodb:// URL (make up starts FerretDB and sets it)"


class StoreNotConfigured(ValueError):
    """No ``mongodb://`` URL was given, so there is no store to talk to."""


class StoreUnavailable(Unavailable):
    """The document store did not answer in time, or one record is too busy; retry shortly."""

    code = "store_unavailable"

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


def is_server_url(url: str) -> bool:
    """Tell whether ``url`` names a MongoDB-protocol deployment."""
    return url.startswith(("mongodb://", "mongodb+srv://"))


def connect(url: str, database: str, **options: Any) -> Any:
    """Return database ``database`` on the server at ``url`` (options override the defaults)."""
    if not is_server_url(url):
        raise StoreNotConfigured(NOT_CONFIGURED)
    settings = {
        "retryWrites": True,
        "serverSelectionTimeoutMS": SERVER_SELECTION_TIMEOUT_MS,
        "connectTimeoutMS": CONNECT_TIMEOUT_MS,
        "socketTimeoutMS": SOCKET_TIMEOUT_MS,
        "maxPoolSize": MAX_POOL_SIZE,
        "tz_aware": True,
        "appname": "fitness",
        **options,
    }
    return pymongo.MongoClient(url, **settings)[database]


def ping(db: Any) -> None:
    """Raise unless the server answers."""
    db.command("ping")


def revised(update: dict[str, Any]) -> dict[str, Any]:
    """Return ``update`` also bumping the document's revision (every update must)."""
    return {**update, "$inc": {**update.get("$inc", {}), REVISION: 1}}


def is_write_conflict(error: BaseException) -> bool:
    """Tell whether ``error`` is a write that lost a race and may simply be sent again."""
    if not isinstance(error, OperationFailure):
        return False
    return error.code == _WRITE_CONFLICT or _FERRETDB_CONFLICT in str(error)


def conflict_safe(operation: Callable[..., Result]) -> Callable[..., Result]:
    """Return ``operation`` sent again (after a short random pause) while it loses races."""
    return tenacity.retry(
        retry=tenacity.retry_if_exception(is_write_conflict),
        stop=tenacity.stop_after_delay(WRITE_CONFLICT_SECONDS),
        wait=tenacity.wait_random_exponential(multiplier=0.002, max=0.05),
        reraise=True,
    )(operation)


def update(operation: Callable[..., Result], query: dict, change: dict, **options: Any) -> Result:
    """Send ``change`` by ``operation`` (``update_one``, ``find_one_and_update``…) the one safe way:
    with the revision bump, and again while it loses races."""
    return conflict_safe(operation)(query, revised(change), **options)


def find_each(
    collection: Any, ids: list[Any], projection: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Return the documents of ``ids`` that exist, in order, looked up one ``_id`` at a time."""
    found = (collection.find_one({"_id": one}, projection) for one in ids)
    return [doc for doc in found if doc is not None]


def update_each(collection: Any, ids: list[Any], change: dict[str, Any]) -> None:
    """Apply ``change`` to each document of ``ids`` as :func:`update` does, one ``_id`` at a time.

    One update per document, not one bulk write: FerretDB v1 stalls past the client's timeout
    when a few bulk writes race over the same documents (4 writers, 20 documents).
    """
    for one in ids:
        update(collection.update_one, {"_id": one}, change)


def insert_new(collection: Any, docs: list[dict[str, Any]]) -> set[int]:
    """Insert ``docs`` (unordered); return the indexes of those whose ``_id`` was taken.

    A taken id means "stored before" to every caller (ids derive from what the document is);
    any other failure is raised.
    """
    if not docs:
        return set()
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(error.get("code") != _DUPLICATE_KEY for error in errors):
            raise
        return {error["index"] for error in errors}
    return set()


def as_domain_error(error: Exception) -> Unavailable | None:
    """Return the 503 a store outage means, or None when ``error`` is not one (a bug)."""
    if is_write_conflict(error):  # first: FerretDB reports it as an InternalError too
        return StoreUnavailable("The activity store is busy with this record; try again.")
    outage = isinstance(error, OperationFailure) and error.code in _OUTAGE_CODES
    if isinstance(error, ConnectionFailure) or outage:
        return StoreUnavailable("The activity store is not answering; try again shortly.")
    return None
