"""This gateway's local half of the fan-out: which connections are here, and a Redis listener.

Each gateway worker holds one pub/sub connection subscribed to every session's and every user's
channel; a message is handed to the connections of that session (or user) on this worker. The
order within a session is the publish order, which is the sequence order (see ``store``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict

import redis

from gateway.live.connection import Connection
from gateway.live.store import PREFIX, SESSION_CHANNELS, USER_CHANNELS
from gateway.live.wire import Outgoing

log = logging.getLogger(__name__)

_SESSION = f"{PREFIX}:s:"
_USER = f"{PREFIX}:u:"


class Hub:
    """Local connections by session and by user, fed by one Redis subscription."""

    def __init__(self, client: redis.Redis):
        self.redis = client
        self._by_session: dict[str, set[Connection]] = defaultdict(set)
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._by_user[connection.user_id].add(connection)

    def remove(self, connection: Connection) -> None:
        with self._lock:
            _discard(self._by_user, connection.user_id, connection)
            for session_id in list(connection.sessions):
                _discard(self._by_session, session_id, connection)

    def join(self, session_id: str, connection: Connection) -> None:
        with self._lock:
            self._by_session[session_id].add(connection)

    def leave(self, session_id: str, connection: Connection) -> None:
        with self._lock:
            _discard(self._by_session, session_id, connection)

    def connections(self) -> list[Connection]:
        """Every connection on this worker, as a snapshot."""
        with self._lock:
            return [c for members in self._by_user.values() for c in members]

    def local_count(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._by_user.values())

    def listen(self, stopped: threading.Event) -> None:
        """Dispatch published events to local connections until ``stopped`` (reconnecting)."""
        while not stopped.is_set():
            try:
                self._listen_once(stopped)
            except redis.RedisError as exc:
                log.warning("live fan-out lost its Redis subscription (%s); reconnecting", exc)
                stopped.wait(1.0)

    def _listen_once(self, stopped: threading.Event) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(SESSION_CHANNELS, USER_CHANNELS)
        try:
            while not stopped.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._dispatch(message["channel"].decode(), message["data"])
        finally:
            pubsub.close()

    def _dispatch(self, channel: str, data: bytes) -> None:
        # The published text is what every receiver gets: decode it once (for its seq), and
        # hand every socket the same message, framed once (see ``wire``).
        message = Outgoing(data.decode())
        if channel.startswith(_SESSION):
            session_id = channel[len(_SESSION) :]
            seq = json.loads(message.text)["seq"]
            with self._lock:
                targets = list(self._by_session.get(session_id, ()))
            for connection in targets:
                connection.deliver(session_id, seq, message)
        elif channel.startswith(_USER):
            with self._lock:
                targets = list(self._by_user.get(channel[len(_USER) :], ()))
            for connection in targets:
                connection.send_text(message)


def _discard(index: dict[str, set[Connection]], key: str, connection: Connection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(connection)
        if not members:
            del index[key]
