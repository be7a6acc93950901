"""One client's WebSocket, with a single writer so that sends from many greenlets never interleave.

simple-websocket's ``send`` is not safe to call from several threads at once, and the Redis
listener, the handler and timers all want to send. Everything goes through a bounded queue that
one writer drains; a client too slow to keep up is disconnected (it can reconnect and catch up
from the last sequence number it saw) instead of holding up everyone else's fan-out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import uuid
from typing import Any

log = logging.getLogger(__name__)

_CLOSE = object()


class Connection:
    """A connected, authenticated client and the sessions it has joined."""

    def __init__(self, ws: Any, user_id: str, queue_size: int):
        self.ws = ws
        self.user_id = user_id
        self.id = uuid.uuid4().hex[:12]
        self.sessions: dict[str, int] = {}  # joined session -> last seq delivered
        self._syncing: dict[str, list[dict[str, Any]]] = {}
        self._outbox: queue.Queue = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self._writer = threading.Thread(target=self._write, name=f"ws-{self.id}", daemon=True)
        self._writer.start()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for this client (never blocks; drops the client if it lags)."""
        self.send_text(json.dumps(message, separators=(",", ":")))

    def send_text(self, text: str) -> None:
        """Queue an already encoded message."""
        if self.closed.is_set():
            return
        try:
            self._outbox.put_nowait(text)
        except queue.Full:
            log.warning("live client %s is too slow; disconnecting it", self.id)
            self.close()

    def deliver(self, session_id: str, seq: int, text: str) -> None:
        """Pass on a session event once, in sequence order, even while catching up."""
        with self._lock:
            if session_id in self._syncing:
                self._syncing[session_id].append(json.loads(text))
                return
            last = self.sessions.get(session_id)
            if last is None or seq <= last:
                return
            self.sessions[session_id] = seq
        self.send_text(text)

    def start_sync(self, session_id: str, last_seq: int) -> None:
        """Hold live events of a session while its history is being replayed."""
        with self._lock:
            self.sessions[session_id] = last_seq
            self._syncing[session_id] = []

    def finish_sync(self, session_id: str, history: list[dict[str, Any]]) -> None:
        """Send the replayed history, then what arrived meanwhile, each event once."""
        with self._lock:
            held = self._syncing.pop(session_id, [])
            last = self.sessions.get(session_id, 0)
            for event in sorted([*history, *held], key=lambda e: e["seq"]):
                if event["seq"] > last:
                    last = event["seq"]
                    self.send(event)
            self.sessions[session_id] = last

    def forget(self, session_id: str) -> None:
        with self._lock:
            self.sessions.pop(session_id, None)
            self._syncing.pop(session_id, None)

    def close(self) -> None:
        """Stop writing and close the socket (the handler then sees the connection end)."""
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(queue.Full):
            self._outbox.put_nowait(_CLOSE)
        try:
            self.ws.close()
        except Exception:  # already gone: nothing to close
            log.debug("closing live client %s", self.id, exc_info=True)

    def _write(self) -> None:
        while True:
            item = self._outbox.get()
            if item is _CLOSE:
                return
            try:
                self.ws.send(item)
            except Exception:  # the socket died; the handler sees it and cleans up
                self.closed.set()
                return
