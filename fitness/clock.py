"""The one way timestamps in events are written: UTC, ISO-8601, to the millisecond."""

from __future__ import annotations

import datetime as dt


def now_iso() -> str:
    """Return the current UTC time as ISO-8601 with milliseconds (``…T12:00:00.123+00:00``)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
