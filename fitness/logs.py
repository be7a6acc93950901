"""JSON logging in ECS fields, with one correlation id per request carried across services.

Every event goes to stdout (and ``LOG_FILE``) as one JSON line. When ``LOGSTASH_HOST`` is set,
the same line is also shipped to Logstash (TCP, json_lines codec) by python-logstash-async: the
logging call only puts the event on an in-memory queue; a background thread appends it to an
SQLite queue on disk and sends what is queued every ``LOGSTASH_FLUSH_SECONDS``. While Logstash is
down, events wait on disk, across restarts too, and go out when it answers again.
"""

from __future__ import annotations

import contextvars
import fcntl
import logging
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logstash_async.constants import constants as logstash_constants
from logstash_async.handler import AsynchronousLogstashHandler
from logstash_async.transport import TcpTransport

from fitness.log_format import EcsFormatter

CORRELATION_HEADER = "X-Request-ID"
CORRELATION_METADATA_KEY = "x-request-id"
# The shipper's own complaints ("could not send…") stay local: shipping them would feed a loop.
SHIPPER_LOGGERS = ("LogProcessingWorker", "logstash_async")
# Connect and send timeout to Logstash: a process stopping while Logstash is unreachable waits for
# at most two attempts (the one under way and a last one) before exiting, well within its grace.
SEND_TIMEOUT_SECONDS = 3.0
# How long to wait for Logstash to close its end after a batch (its only acknowledgement).
CONFIRM_TIMEOUT_SECONDS = 5.0

_correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")
_setup: list[tuple[str, str, str]] = []  # this process's (service, level, log file), once set


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


@dataclass(frozen=True)
class Shipping:
    """Where to ship log events: Logstash's TCP json_lines input, and the on-disk queue."""

    host: str
    port: int
    queue_dir: Path
    flush_seconds: float = 2.0
    event_ttl_seconds: int | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Shipping | None:
        """Return the shipping ``settings`` ask for, or None when ``LOGSTASH_HOST`` is empty."""
        if not settings.get("LOGSTASH_HOST"):
            return None
        return cls(
            host=settings["LOGSTASH_HOST"],
            port=int(settings["LOGSTASH_PORT"]),
            queue_dir=Path(settings["DATA_DIR"]) / "log-queue",
            flush_seconds=float(settings["LOGSTASH_FLUSH_SECONDS"]),
            event_ttl_seconds=int(settings.get("LOGSTASH_EVENT_TTL_SECONDS") or 0) or None,
        )


def configure_logging(
    service_name: str,
    level: str = "INFO",
    log_file: str = "",
    settings: dict[str, Any] | None = None,
) -> None:
    """Send every log event to stdout (and ``log_file`` if set) as one ECS JSON line.

    With ``LOGSTASH_HOST`` in ``settings`` (read from the environment when not given), ship
    every event to Logstash as well.
    """
    if settings is None:
        from fitness.config import load_settings

        settings = load_settings({})
    _setup[:] = [(service_name, level, log_file)]
    formatter = EcsFormatter(
        extra={"service.name": service_name, "host.hostname": socket.gethostname()},
        exclude_fields=["log.original"],
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    root = logging.getLogger()
    shipper = _keep_or_close_shipper(root, Shipping.from_settings(settings), service_name)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if shipper is not None:
        handlers.append(shipper)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(CorrelationFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # gunicorn's own loggers would otherwise print plain text next to our JSON.
    for name in ("gunicorn.error", "gunicorn.access", "werkzeug"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def logging_setup() -> tuple[str, str, str] | None:
    """Return how this process logs (service, level, log file), for a worker process it starts
    to log the same way (``configure_logging(*setup, settings={})``: no shipper of its own)."""
    return _setup[0] if _setup else None


def _keep_or_close_shipper(
    root: logging.Logger, shipping: Shipping | None, service_name: str
) -> ShippingHandler | None:
    """Return the shipper to use: the installed one if it ships the same way, else a new one.

    One process has one shipper: the library runs a single sending thread per process.
    """
    current = next((h for h in root.handlers if isinstance(h, ShippingHandler)), None)
    if current is not None and current.matches(shipping, service_name):
        return current
    if current is not None:
        root.removeHandler(current)
        current.close()
    return ShippingHandler(shipping, service_name) if shipping else None


class _ShipperLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(SHIPPER_LOGGERS)


class ShippingHandler(AsynchronousLogstashHandler):
    """Queue events on disk and send them to Logstash from a background thread.

    Each process needs a queue file of its own (the library's queue is not safe for two
    processes at once), and a restarted process should pick up what its predecessor left. So a
    process takes the first numbered queue of its service that no live process holds (an
    exclusive ``flock``); a process forked with this handler (a gunicorn worker) takes its own
    queue on its first event.
    """

    def __init__(self, shipping: Shipping, service_name: str):
        self.shipping = shipping
        self.service_name = service_name
        # The library reads these module-wide constants; they are the same in every shipper.
        logstash_constants.QUEUE_CHECK_INTERVAL = shipping.flush_seconds
        logstash_constants.QUEUED_EVENTS_FLUSH_INTERVAL = shipping.flush_seconds
        logstash_constants.SOCKET_TIMEOUT = SEND_TIMEOUT_SECONDS
        self._pid = os.getpid()
        self._lock_fd, database_path = _claim_queue(shipping.queue_dir, service_name)
        super().__init__(
            shipping.host,
            shipping.port,
            database_path=str(database_path),
            transport=_Transport,
            event_ttl=shipping.event_ttl_seconds,
        )
        self.addFilter(_ShipperLogFilter())

    def matches(self, shipping: Shipping | None, service_name: str) -> bool:
        """Return True if this handler ships as ``shipping`` says, for ``service_name``."""
        return shipping == self.shipping and service_name == self.service_name

    def emit(self, record: logging.LogRecord) -> None:
        if os.getpid() != self._pid:
            self._adopt_after_fork()
        super().emit(record)

    def _adopt_after_fork(self) -> None:
        # The parent keeps its queue, its lock and its socket; this process takes its own.
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
        self._pid = os.getpid()
        self._lock_fd, database_path = _claim_queue(self.shipping.queue_dir, self.service_name)
        self._database_path = str(database_path)
        self._transport = None  # a copy of the parent's, maybe mid-send on a shared socket

    def pause(self) -> bool:
        """Stop the sending thread (queued events stay on disk); True if it was running."""
        if os.getpid() != self._pid or not self._worker_thread_is_running():
            return False
        with self.lock:
            self.shutdown()
        return True

    def resume(self) -> None:
        """Start the sending thread again, to send what is queued without waiting for an event."""
        with self.lock:
            self._setup_transport()
            self._start_worker_thread()

    def close(self) -> None:
        """Stop the sending thread (events still queued stay on disk) and free the queue."""
        super().close()  # in a forked process that never emitted, there is no thread to stop
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1


_paused: list[ShippingHandler] = []


def _pause_shipping_before_fork() -> None:
    """Stop this process's sending thread before it forks (a gunicorn master starting a worker).

    The thread may be inside SQLite, holding its locks; a forked child that inherits them hangs
    on its first SQLite call (the user database and the embedded MongoDB engine are SQLite too).
    """
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ShippingHandler) and handler.pause():
            _paused.append(handler)


def _resume_shipping_after_fork() -> None:
    while _paused:
        _paused.pop().resume()


os.register_at_fork(
    before=_pause_shipping_before_fork,
    after_in_parent=_resume_shipping_after_fork,
    after_in_child=_paused.clear,
)


class _Transport(TcpTransport):
    """The library's TCP transport, sending a batch only once Logstash has confirmed it.

    json_lines over TCP has no acknowledgement: the library counts a batch as sent once the
    kernel has it, so a batch on the wire when Logstash stops (or a connection waiting in its
    accept queue) is lost. Logstash's tcp input closes a connection only after it has read, and
    queued, every line before the client's end-of-stream; so after the batch this transport
    half-closes and waits for that close. A reset or silence instead raises, and the library
    sends the batch again later: at least once, never lost (Logstash drops the duplicates, by
    document id, see elk/logstash/pipeline/fitness.conf).

    It also skips the library's wait of up to 30 s (``SOCKET_CLOSE_WAIT_TIMEOUT``) for the send
    buffer of a socket that never connected, which delayed every retry while Logstash was down.
    """

    def _wait_for_socket_buffer_empty(self) -> None:
        if self._connected():
            super()._wait_for_socket_buffer_empty()

    def _shutdown_socket(self) -> None:
        if not self._connected():
            return
        try:
            self._sock.shutdown(socket.SHUT_WR)
            self._sock.settimeout(CONFIRM_TIMEOUT_SECONDS)
            while self._sock.recv(4096):
                pass  # Logstash sends nothing; end-of-stream is its confirmation
        except OSError as exc:
            self._sock.close()
            raise ConnectionError(f"Logstash did not confirm the batch: {exc}") from exc

    def _connected(self) -> bool:
        try:
            self._sock.getpeername()
        except OSError:
            return False
        return True


def _claim_queue(directory: Path, service_name: str) -> tuple[int, Path]:
    """Lock the first free queue slot of ``service_name``; return the lock's fd and the queue."""
    directory.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        lock_fd = os.open(directory / f"{service_name}.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            slot += 1
            continue
        return lock_fd, directory / f"{service_name}.{slot}.db"
