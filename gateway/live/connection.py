"""One client's WebSocket connection: who it is, which sessions it joined, what it has seen.

Everything sent to the client goes through its :class:`~gateway.live.wire.SocketWriter`, so
sends from the fan-out loop, the handler and timers never interleave; a client too slow to keep
up is disconnected (it can reconnect and catch up from the last sequence number it saw) instead
of holding up everyone else's fan-out.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

from gateway.live.wire import Outgoing, SocketWriter

log = logging.getLogger(__name__)


class Connection:
    """A connected, authenticated client and the sessions it has joined."""

    def __init__(self, ws: Any, user_id: str, queue_size: int):
        self.ws = ws
        self.user_id = user_id
        self.id = uuid.uuid4().hex[:12]
        self.sessions: dict[str, int] = {}  # joined session -> last seq delivered
        self._syncing: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._writer = SocketWriter(ws, queue_size, name=f"ws-{self.id}")
        self.closed = self._writer.closed

    def send(self, message: dict[str, Any]) -> None:
        """Send a message to this client (never blocks; drops the client if it lags)."""
        self._writer.write(Outgoing(json.dumps(message, separators=(",", ":"))))

    def send_text(self, message: Outgoing) -> None:
        """Send an already encoded message (shared by every receiver of an event)."""
        self._writer.write(message)

    def deliver(self, session_id: str, seq: int, message: Outgoing) -> None:
        """Pass on a session event once, in sequence order, even while catching up."""
        with self._lock:
            if session_id in self._syncing:
                self._syncing[session_id].append(json.loads(message.text))
                return
            last = self.sessions.get(session_id)
            if last is None or seq <= last:
                return
            self.sessions[session_id] = seq
            # Written under the lock: two fan-out loops (a replay and the live feed) can't swap
            # the order of two events between the check above and the write.
            self._writer.write(message)

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
        """Close the socket (the handler then sees the connection end) and stop writing."""
        if self.closed.is_set():
            return
        try:
            self.ws.close()
        except Exception:  # already gone: nothing to close
            log.debug("closing live client %s", self.id, exc_info=True)
        self._writer.finish()
