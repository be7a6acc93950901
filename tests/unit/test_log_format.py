"""Our ECS formatter writes exactly what ecs-logging's own formatter writes, only faster."""

from __future__ import annotations

import logging
import sys

import ecs_logging
import pytest

from fitness.log_format import EcsFormatter

SETTINGS = {
    "extra": {"service.name": "gateway", "host.hostname": "box"},
    "exclude_fields": ["log.original"],
}


def _record(message="%s %s %s", args=("GET", "/users/u/goals", 200), exc_info=None, **kwargs):
    return logging.LogRecord(
        "fitness.web", logging.INFO, "web.py", 123, message, args, exc_info, **kwargs
    )


def _with_extra(record: logging.LogRecord, extra: dict) -> logging.LogRecord:
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def _failure() -> logging.LogRecord:
    try:
        raise ValueError("boom ünïcode")
    except ValueError:
        return _record("failed %s", ("x",), exc_info=sys.exc_info())


RECORDS = {
    "access": lambda: _with_extra(
        _record(),
        {
            "event.kind": "event",
            "event.duration": 1234567,
            "http.response.status_code": 200,
            "client.ip": "127.0.0.1",
            "trace.id": "abc",
        },
    ),
    "nested extra": lambda: _with_extra(_record("plain", None), {"upstream": {"url": "x"}}),
    "no args": lambda: _record("no args here", None),
    "non-ASCII": lambda: _record("café %s", ("naïve",)),
    "error": _failure,
    "error, None extra": lambda: _with_extra(_failure(), {"error.message": None}),
    "stack": lambda: _record("with stack", None, sinfo="Stack (most recent call last): ..."),
    "apm": lambda: _with_extra(_record("apm", None), {"elasticapm_trace_id": "t1"}),
}


@pytest.mark.parametrize("kind", RECORDS)
def test_it_writes_what_ecs_logging_writes(kind):
    record = RECORDS[kind]()
    theirs = ecs_logging.StdlibFormatter(**SETTINGS)
    assert EcsFormatter(**SETTINGS).format(record) == theirs.format(record)
