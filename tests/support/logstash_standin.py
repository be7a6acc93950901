"""A stand-in for Logstash's ``tcp`` input with the ``json_lines`` codec: one JSON event a line."""

from __future__ import annotations

import json
import socketserver
import threading


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class JsonLinesListener:
    """Collect the JSON events sent to ``127.0.0.1:port``; stop and start again on that port."""

    def __init__(self, port: int):
        self.port = port
        self.events: list[dict] = []
        self.bad_lines: list[bytes] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def start(self) -> None:
        """Listen (again) on the port."""
        listener = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    listener._receive(line)

        self._server = _Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[dict]:
        """Return a copy of every event received so far."""
        with self._lock:
            return list(self.events)

    def _receive(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except ValueError:
            with self._lock:
                self.bad_lines.append(line)
            return
        with self._lock:
            self.events.append(event)
