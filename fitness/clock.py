"""The one way timestamps in events are written: UTC, ISO-8601, to the millisecond."""

from __future__ import annotations

import datetime as dt


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 with milliseconds (``…T12:00:00.123+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def utcnow() -> dt.datetime:
    """Return the current time in UTC, to the millisecond: what a BSON date keeps, so a time
    read back from the document store equals the one written."""
    return to_millis(dt.datetime.now(dt.UTC))


def to_millis(moment: dt.datetime) -> dt.datetime:
    """Drop sub-millisecond digits, which BSON dates do not keep."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Return ``moment`` as an aware UTC time: SQLite and BSON hand back naive ones, in UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
