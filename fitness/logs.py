"""JSON logging in ECS fields, with one correlation id per request carried across services."""

from __future__ import annotations

import contextvars
import logging
import sys
import uuid

import ecs_logging

CORRELATION_HEADER = "X-Request-ID"
CORRELATION_METADATA_KEY = "x-request-id"

_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


def new_correlation_id() -> str:
    """Return a fresh correlation id."""
    return uuid.uuid4().hex


def get_correlation_id() -> str:
    """Return the current request's correlation id ('' outside a request)."""
    return _correlation_id.get()


def set_correlation_id(value: str) -> contextvars.Token:
    """Make ``value`` the correlation id of the current context."""
    return _correlation_id.set(value)


def reset_correlation_id(token: contextvars.Token) -> None:
    """Restore the correlation id that was current before ``set_correlation_id``."""
    _correlation_id.reset(token)


def clean_correlation_id(value: str | None) -> str:
    """Accept a client's id if it is short and printable; otherwise make a new one."""
    if value and len(value) <= 128 and value.isascii() and value.isprintable():
        return value
    return new_correlation_id()


class CorrelationFilter(logging.Filter):
    """Add ``trace.id`` (the correlation id) to every record logged inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        correlation_id = get_correlation_id()
        if correlation_id:
            setattr(record, "trace.id", correlation_id)
        return True


def configure_logging(service_name: str, level: str = "INFO", log_file: str = "") -> None:
    """Send every log event to stdout (and ``log_file`` if set) as one ECS JSON line."""
    formatter = ecs_logging.StdlibFormatter(
        extra={"service.name": service_name}, exclude_fields=["log.original"]
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(CorrelationFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # gunicorn's own loggers would otherwise print plain text next to our JSON.
    for name in ("gunicorn.error", "gunicorn.access", "werkzeug"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
