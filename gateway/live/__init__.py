"""Live group workouts over WebSocket (``/ws``), with their state and fan-out in Redis.

``store`` keeps sessions in the state Redis and numbers, logs and publishes every event;
``hub`` passes published events to this worker's connections; ``connection`` gives each socket
one writer; ``service`` holds the rules of each message; ``saving`` hands ended sessions to the
activity service; ``routes`` is the socket endpoint and the ``/live`` page.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from fitness import config
from gateway.live.hub import Hub
from gateway.live.saving import SessionSaver
from gateway.live.service import LiveService, LiveSettings
from gateway.live.store import LiveStore

# A hard cap, above the protocol's own limit: bigger frames are refused by the socket library
# (close 1009); between the two, the client gets an ``error`` event and stays connected.
SOCKET_MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Live:
    hub: Hub
    saver: SessionSaver
    service: LiveService

    @property
    def settings(self) -> LiveSettings:
        return self.service.settings

    def handle(self, connection, message):
        return self.service.handle(connection, message)

    def heartbeats_forever(self, stopped) -> None:
        self.service.heartbeats_forever(stopped)

    def disconnected(self, connection) -> None:
        self.service.disconnected(connection)


@dataclass(frozen=True)
class Settings(config.Settings):
    """How long live sessions last, how chatty sockets may be, how sessions are saved."""

    live_session_ttl_seconds: int = 6 * 3600
    live_max_events: int = 2000
    live_heartbeat_seconds: float = 10.0
    live_leave_grace_seconds: float = 30.0
    live_ping_seconds: float = 20.0
    live_max_message_bytes: int = 4096
    live_messages_per_second: str = "20 per second"
    live_queue_size: int = 1000
    live_save_retry_seconds: float = 5.0


def init_app(
    app: Flask, settings: Settings | None = None
) -> list[Callable[[threading.Event], None]]:
    """Set up live sessions on ``app`` (on the state Redis and the activity service's client
    of ``gateway.internal``); return its background loops: the Redis listener that fans events
    out, the heartbeats, and the retry of sessions not saved yet. The routes are registered
    by the caller."""
    settings = settings or Settings.from_env()
    client = app.extensions["state_redis"]
    store = LiveStore(client, settings.live_session_ttl_seconds, settings.live_max_events)
    hub = Hub(client, store.events_after)
    saver = SessionSaver(
        store, app.extensions["participants"].activity, settings.live_save_retry_seconds
    )
    live_settings = LiveSettings(
        heartbeat_seconds=settings.live_heartbeat_seconds,
        leave_grace_seconds=settings.live_leave_grace_seconds,
        max_message_bytes=settings.live_max_message_bytes,
        messages_per_second=settings.live_messages_per_second,
        queue_size=settings.live_queue_size,
    )
    live = Live(hub, saver, LiveService(store, hub, live_settings, saver.save_soon))
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": settings.live_ping_seconds,
        "max_message_size": SOCKET_MAX_MESSAGE_BYTES,
    }
    app.extensions["live"] = live
    return [live.hub.listen, live.heartbeats_forever, live.saver.retry_forever]
