"""Writing frames to one client socket: whole, in order, and without making the caller wait.

Fan-out is the hot path of live sessions: one event goes to thousands of sockets, and the
gateway worker writes them one after the other. Two things keep that cheap:

- an event's frame is built once per worker (:class:`Outgoing`), not once per receiver by
  wsproto. Frames are never compressed, also for clients that negotiated per-message deflate:
  a message without the RSV1 bit is an uncompressed one (RFC 7692 §6), and ours are small;
- a frame is written straight from the fan-out loop when the socket has room (the common case:
  one non-blocking ``send``), and only queued for the socket's writer when it has not. A client
  that lets more than ``max_pending`` frames pile up is disconnected; it can reconnect and catch
  up from the last sequence number it saw.

Every byte for the socket goes through :meth:`SocketWriter.send` — also simple-websocket's own
pings, pongs and close frames, because the writer replaces the socket it writes to — so frames
never interleave (simple-websocket's ``send`` has no lock, and writes with ``socket.send``,
which may write only part of a frame: miguelgrinberg/simple-websocket#45).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from wsproto.frame_protocol import FrameProtocol

log = logging.getLogger(__name__)

_PLAIN_SERVER_FRAMES = FrameProtocol(client=False, extensions=[])
# How long, and how much, a closing socket still reads and discards before closing.
CLOSE_DRAIN_SECONDS = 2.0
CLOSE_DRAIN_BYTES = 4 * 1024 * 1024


class Outgoing:
    """One event as every receiver gets it: its text, and its plain frame built on first use."""

    __slots__ = ("_frame", "text")

    def __init__(self, text: str):
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = bytes(_PLAIN_SERVER_FRAMES.send_data(self.text))
        return self._frame


class SocketWriter:
    """The only writer of one client socket (see the module docstring)."""

    def __init__(self, ws: Any, max_pending: int, name: str):
        self._sock = ws.sock
        self._send_now = _nonblocking_send(self._sock)
        self._max_pending = max_pending
        self._name = name
        self._lock = threading.Lock()
        self._pending: deque[bytes | memoryview] = deque()
        self._busy = False  # the writer thread is writing what it took from _pending
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None
        self.closed = threading.Event()
        ws.sock = self

    def write(self, message: Outgoing) -> None:
        """Write one text message now, or queue it behind what is waiting."""
        if not self.closed.is_set():
            self.send(message.frame)

    def send(self, data: bytes) -> int:
        """Write or queue raw frame bytes: ours, and simple-websocket's pings, pongs and close."""
        with self._lock:
            overflow = self._write_locked(data)
        if overflow:
            self.abort("too slow")
        return len(data)

    def abort(self, why: str) -> None:
        """Drop what is pending and cut the connection (the handler sees it end and cleans up)."""
        if self.closed.is_set():
            return
        log.warning("live socket dropped: %s", why)
        self.closed.set()
        with self._lock:
            self._pending.clear()
        self._wake.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """Stop the writer once what is pending is written (the close frame included)."""
        self.closed.set()
        self._wake.set()

    def close(self) -> None:
        """Close the way RFC 6455 §7.1.1 asks: flush, stop sending, drain what still comes, close.

        simple-websocket closes the socket right after queueing its close frame, also when it
        refuses an oversized message whose rest is still arriving; closing with unread input
        makes the kernel answer with a reset, and the client never reads the close code (1009).
        Bounded in time and bytes: this runs on the socket's own reader.
        """
        deadline = time.monotonic() + CLOSE_DRAIN_SECONDS
        while (self._pending or self._busy) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.finish()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)
            drained = 0
            while drained < CLOSE_DRAIN_BYTES and (left := deadline - time.monotonic()) > 0:
                self._sock.settimeout(left)
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        # recv, fileno, close, ...: simple-websocket reads through the socket it was given.
        return getattr(self._sock, name)

    def _write_locked(self, data: bytes | memoryview) -> bool:
        """Write now if nothing is ahead of ``data``, else queue it; True when over the limit."""
        if not self._busy and not self._pending and self._send_now is not None:
            try:
                sent = self._send_now(data)
            except BlockingIOError:
                sent = 0
            except OSError:  # the socket died; its handler sees it and cleans up
                self.closed.set()
                return False
            if sent == len(data):
                return False
            data = memoryview(data)[sent:]
        self._pending.append(data)
        self._wake.set()
        if self._writer is None:
            self._start_writer()
        return len(self._pending) > self._max_pending

    def _start_writer(self) -> None:
        """Start the thread that writes queued frames, the first time one has to wait.

        Most sockets never need it (their kernel buffer always has room), and every thread is a
        greenlet, an event and ~30 objects that each full garbage collection walks: with
        thousands of sockets per worker that is tens of milliseconds of every such pause.
        """
        self._writer = threading.Thread(target=self._drain, name=self._name, daemon=True)
        self._writer.start()

    def _drain(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                chunks = list(self._pending)
                self._pending.clear()
                self._busy = bool(chunks)
            if not chunks:
                if self.closed.is_set():
                    return
                continue
            try:
                self._sock.sendall(b"".join(chunks))
            except OSError:
                self.closed.set()
                return
            finally:
                with self._lock:
                    self._busy = False


def _nonblocking_send(sock: Any) -> Callable[[bytes | memoryview], int] | None:
    """A ``send`` that returns at once with what fit, or None when this socket has none.

    A gevent socket waits (cooperatively) when the kernel buffer is full; the OS socket it wraps
    answers at once. Under threads (plain sockets) everything goes through the writer thread.
    """
    try:
        from gevent.socket import socket as gevent_socket
    except ImportError:  # pragma: no cover - gevent is a dependency
        return None
    if not isinstance(sock, gevent_socket):
        return None
    raw = sock._sock  # gevent keeps the OS socket here; its send never waits
    return lambda data: raw.send(data, socket.MSG_DONTWAIT)
