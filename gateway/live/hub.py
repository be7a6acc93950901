"""This gateway's local half of the fan-out: which connections are here, and a Redis listener.

Each gateway worker holds one pub/sub connection subscribed to every session's and every user's
channel; a message is handed to the connections of that session (or user) on this worker. The
order within a session is the publish order, which is the sequence order (see ``store``).
Pub/sub drops what is published while a subscriber is away (a Redis failover, a reconnect), so
a gap in a session's numbers, and every re-subscription, is filled from the session's log.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

import redis

from gateway.live.connection import Connection
from gateway.live.store import PREFIX, SESSION_CHANNELS, USER_CHANNELS
from gateway.live.wire import Outgoing

log = logging.getLogger(__name__)

_SESSION = f"{PREFIX}:s:"
_USER = f"{PREFIX}:u:"
FANOUTS_KEPT = 1000  # the recent fan-outs /status summarises


class FanoutTimes:
    """How long this worker took to hand recent session events to all its sockets.

    Measured from the event's arrival from Redis to the last socket write returning: the
    gateway's own share of an event's latency, told apart from Redis and from the clients.
    """

    def __init__(self, kept: int = FANOUTS_KEPT):
        self._recent: deque[tuple[int, float]] = deque(maxlen=kept)  # (sockets, seconds)

    def record(self, sockets: int, seconds: float) -> None:
        self._recent.append((sockets, seconds))

    def summary(self) -> dict[str, float | int]:
        recent = list(self._recent)
        times = sorted(seconds for _, seconds in recent)
        if not times:
            return {"events": 0}
        return {
            "events": len(times),
            "sockets_max": max(sockets for sockets, _ in recent),
            "p50_ms": _ms_at(times, 0.5),
            "p99_ms": _ms_at(times, 0.99),
            "max_ms": _ms_at(times, 1.0),
        }


def _ms_at(ordered: list[float], fraction: float) -> float:
    """The value at ``fraction`` of ordered seconds, in milliseconds (nearest rank)."""
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1e3, 3)


class Hub:
    """Local connections by session and by user, fed by one Redis subscription."""

    def __init__(self, client: redis.Redis, events_after: Callable[[str, int], list[dict]]):
        self.redis = client
        self.events_after = events_after  # the session's logged events after a seq (store)
        self._last_seq: dict[str, int] = {}  # session -> last seq this worker passed on
        self._by_session: dict[str, set[Connection]] = defaultdict(set)
        self._by_user: dict[str, set[Connection]] = defaultdict(set)
        self._lock = threading.Lock()
        self.fanouts = FanoutTimes()

    def add(self, connection: Connection) -> None:
        with self._lock:
            self._by_user[connection.user_id].add(connection)

    def remove(self, connection: Connection) -> None:
        with self._lock:
            _discard(self._by_user, connection.user_id, connection)
            for session_id in list(connection.sessions):
                self._leave_locked(session_id, connection)

    def join(self, session_id: str, connection: Connection) -> None:
        with self._lock:
            self._by_session[session_id].add(connection)

    def leave(self, session_id: str, connection: Connection) -> None:
        with self._lock:
            self._leave_locked(session_id, connection)

    def _leave_locked(self, session_id: str, connection: Connection) -> None:
        _discard(self._by_session, session_id, connection)
        if session_id not in self._by_session:
            self._last_seq.pop(session_id, None)

    def connections(self) -> list[Connection]:
        """Every connection on this worker, as a snapshot."""
        with self._lock:
            return [c for members in self._by_user.values() for c in members]

    def local_count(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._by_user.values())

    def status(self) -> dict:
        """This worker's sockets, sessions and recent fan-out times (for ``/status``)."""
        with self._lock:
            sessions = len(self._by_session)
        return {
            "connections": self.local_count(),
            "sessions": sessions,
            "fanout": self.fanouts.summary(),
        }

    def listen(self, stopped: threading.Event) -> None:
        """Dispatch published events to local connections until ``stopped`` (reconnecting)."""
        resubscribing = False
        while not stopped.is_set():
            try:
                self._listen_once(stopped, resubscribing)
            except redis.RedisError as exc:
                log.warning("live fan-out lost its Redis subscription (%s); reconnecting", exc)
                resubscribing = True
                stopped.wait(1.0)

    def _listen_once(self, stopped: threading.Event, resubscribing: bool) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(SESSION_CHANNELS, USER_CHANNELS)
        if resubscribing:
            self._catch_up_all()
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
                last = self._last_seq.get(session_id)
            if not targets:
                return
            started = time.perf_counter()
            if last is not None and seq > last + 1:
                self._catch_up(session_id, last, targets, before=seq)
            self._pass_on(session_id, seq, message, targets)
            self.fanouts.record(len(targets), time.perf_counter() - started)
        elif channel.startswith(_USER):
            with self._lock:
                targets = list(self._by_user.get(channel[len(_USER) :], ()))
            for connection in targets:
                connection.send_text(message)

    def _pass_on(
        self, session_id: str, seq: int, message: Outgoing, targets: list[Connection]
    ) -> None:
        with self._lock:
            if seq > self._last_seq.get(session_id, 0):
                self._last_seq[session_id] = seq
        for connection in targets:
            connection.deliver(session_id, seq, message)

    def _catch_up(
        self, session_id: str, after: int, targets: list[Connection], before: float = math.inf
    ) -> None:
        """Pass on logged events this worker missed: pub/sub drops what is published while a
        subscriber is away (a Redis failover, a reconnect); the session log keeps it."""
        try:
            missed = self.events_after(session_id, after)
        except redis.RedisError as exc:
            log.warning("live session %s: could not fetch missed events: %s", session_id, exc)
            return
        for event in missed:
            if event["seq"] < before:
                text = json.dumps(event, separators=(",", ":"))
                self._pass_on(session_id, event["seq"], Outgoing(text), targets)

    def _catch_up_all(self) -> None:
        """After re-subscribing, give every local socket what was published meanwhile."""
        with self._lock:
            sessions = {s: list(members) for s, members in self._by_session.items()}
        for session_id, targets in sessions.items():
            seen = [c.sessions.get(session_id) for c in targets]
            after = min((s for s in seen if s is not None), default=None)
            if after is not None:
                self._catch_up(session_id, after, targets)


def _discard(index: dict[str, set[Connection]], key: str, connection: Connection) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(connection)
        if not members:
            del index[key]
