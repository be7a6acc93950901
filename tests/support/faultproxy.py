"""A small TCP fault proxy for tests: a stand-in for toxiproxy, which is not installable here.

``FaultProxy(upstream_port)`` listens on a free local port and forwards every connection to the
upstream. Its mode can be switched at any time, and a switch applies to connections already open
as well as to new ones: a gateway keeps pooled keep-alive connections (and a gRPC channel one
HTTP/2 connection), so a fault that only hit new connections would never be seen.

Modes (:meth:`FaultProxy.set`):

- ``pass``: forward both ways. ``bandwidth`` (bytes/s) optionally throttles every chunk.
- ``latency``: wait ``latency`` seconds before forwarding each chunk from the upstream
  (``per="chunk"``: the answer arrives late, the request is delivered at once), or once before
  connecting to the upstream (``per="connection"``: only new connections are slow).
- ``blackhole``: accept and read everything, never forward and never answer.
- ``reset``: abort connections with a TCP RST (``SO_LINGER`` 0): new ones right after accept,
  open ones at the switch (``existing=False`` leaves open ones alone).
- ``drop``: close connections at once with a normal FIN, new ones right after accept and open
  ones at the switch.

Every socket operation has a timeout; :meth:`FaultProxy.stop` closes everything and joins the
threads. One thread accepts, two threads pump each connection (one per direction).
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from dataclasses import dataclass

MODES = ("pass", "latency", "blackhole", "reset", "drop")
CHUNK = 16 * 1024
POLL_SECONDS = 0.2  # how often idle threads look at the stop flag
SEND_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Fault:
    """The proxy's current behaviour (see the module docstring)."""

    mode: str = "pass"
    latency: float = 0.0
    per: str = "chunk"  # or "connection"
    bandwidth: int = 0  # bytes per second; 0 = unlimited


def _abort(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and (unless black-holed from the start) its upstream connection."""

    def __init__(self, client: socket.socket):
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def end(self, reset: bool = False) -> None:
        """Close both sides once, with a RST when ``reset``."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                (_abort if reset else _close)(sock)


class FaultProxy:
    """Forward ``127.0.0.1:port`` to ``upstream_host:upstream_port`` with switchable faults."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1", port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.fault = Fault()
        self._stopped = threading.Event()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]

    @property
    def address(self) -> str:
        """Return ``127.0.0.1:port``, the target to give clients instead of the upstream's."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start accepting connections (in ``pass`` mode unless :meth:`set` said otherwise)."""
        self._spawn(self._accept_loop)
        return self

    def set(
        self,
        mode: str,
        latency: float = 0.0,
        per: str = "chunk",
        bandwidth: int = 0,
        existing: bool = True,
    ) -> None:
        """Switch to ``mode``; ``reset`` and ``drop`` also end open connections if ``existing``."""
        if mode not in MODES or per not in ("chunk", "connection"):
            raise ValueError(f"unknown fault {mode!r} per {per!r}")
        self.fault = Fault(mode, latency, per, bandwidth)
        if mode in ("reset", "drop") and existing:
            with self._lock:
                links = list(self._links)
            for link in links:
                link.end(reset=mode == "reset")

    def stop(self) -> None:
        """Stop accepting, end every connection and join every thread."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.end()
        for thread in self._threads:
            thread.join(timeout=SEND_TIMEOUT_SECONDS + 1)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed by stop()
            client.settimeout(SEND_TIMEOUT_SECONDS)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        """Apply the fault to a new connection, then pump it both ways until either side ends."""
        fault, link = self.fault, _Link(client)
        if fault.mode in ("reset", "drop"):
            link.end(reset=fault.mode == "reset")
            return
        with self._lock:
            self._links.add(link)
        try:
            if fault.mode == "latency" and fault.per == "connection":
                self._stopped.wait(fault.latency)
            if fault.mode != "blackhole":
                link.upstream = self._connect(link)
                if link.upstream is None:
                    return
            self._spawn(self._pump, link, client, "up")
            self._pump(link, link.upstream, "down")
        finally:
            with self._lock:
                self._links.discard(link)

    def _connect(self, link: _Link) -> socket.socket | None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError:
            link.end(reset=True)  # as the upstream refused us, so we refuse the client
            return None
        upstream.settimeout(SEND_TIMEOUT_SECONDS)
        return upstream

    def _pump(self, link: _Link, source: socket.socket | None, direction: str) -> None:
        """Copy chunks from ``source`` to the other side, applying the fault current at each one.

        A black-holed link has no upstream yet: the "down" pump just waits, the "up" pump reads
        and discards. Switching back to pass connects such a link to the upstream lazily.
        """
        while not link.closed.is_set() and not self._stopped.is_set():
            if source is None:  # the down side of a link that started black-holed
                source = link.upstream
                if source is None:
                    self._stopped.wait(POLL_SECONDS)
                    continue
            try:
                readable, _, _ = select.select([source], [], [], POLL_SECONDS)
                if not readable:
                    continue
                chunk = source.recv(CHUNK)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            if not self._forward(link, chunk, direction):
                break
        link.end()

    def _forward(self, link: _Link, chunk: bytes, direction: str) -> bool:
        """Send ``chunk`` on under the current fault; False when the link should end."""
        fault = self.fault
        if fault.mode == "blackhole":
            return True
        if fault.mode in ("reset", "drop"):
            link.end(reset=fault.mode == "reset")
            return False
        slow = fault.mode == "latency" and fault.per == "chunk" and direction == "down"
        if slow and (self._stopped.wait(fault.latency) or link.closed.is_set()):
            return False
        if fault.bandwidth:
            self._stopped.wait(len(chunk) / fault.bandwidth)
        if link.upstream is None:
            link.upstream = self._connect(link)
            if link.upstream is None:
                return False
        target = link.upstream if direction == "up" else link.client
        try:
            target.sendall(chunk)
        except OSError:
            return False
        return True
