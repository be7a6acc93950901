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
from typing import Any

from flask import Flask

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


DEFAULTS: dict[str, Any] = {
    "LIVE_SESSION_TTL_SECONDS": 6 * 3600,
    "LIVE_MAX_EVENTS": 2000,
    "LIVE_HEARTBEAT_SECONDS": 10.0,
    "LIVE_LEAVE_GRACE_SECONDS": 30.0,
    "LIVE_PING_SECONDS": 20.0,
    "LIVE_MAX_MESSAGE_BYTES": 4096,
    "LIVE_MESSAGES_PER_SECOND": "20 per second",
    "LIVE_QUEUE_SIZE": 1000,
    "LIVE_SAVE_RETRY_SECONDS": 5.0,
}


def init_app(app: Flask, settings: dict[str, Any]) -> list[Callable[[threading.Event], None]]:
    """Set up live sessions on ``app`` (on the state Redis and the activity service's client
    of ``gateway.internal``); return its background loops: the Redis listener that fans events
    out, the heartbeats, and the retry of sessions not saved yet. The routes are registered
    by the caller."""
    client = app.extensions["state_redis"]
    store = LiveStore(client, settings["LIVE_SESSION_TTL_SECONDS"], settings["LIVE_MAX_EVENTS"])
    hub = Hub(client, store.events_after)
    saver = SessionSaver(
        store, app.extensions["participants"].activity, settings["LIVE_SAVE_RETRY_SECONDS"]
    )
    live_settings = LiveSettings(
        heartbeat_seconds=settings["LIVE_HEARTBEAT_SECONDS"],
        leave_grace_seconds=settings["LIVE_LEAVE_GRACE_SECONDS"],
        max_message_bytes=settings["LIVE_MAX_MESSAGE_BYTES"],
        messages_per_second=settings["LIVE_MESSAGES_PER_SECOND"],
        queue_size=settings["LIVE_QUEUE_SIZE"],
    )
    live = Live(hub, saver, LiveService(store, hub, live_settings, saver.save_soon))
    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": settings["LIVE_PING_SECONDS"],
        "max_message_size": SOCKET_MAX_MESSAGE_BYTES,
    }
    app.extensions["live"] = live
    return [live.hub.listen, live.heartbeats_forever, live.saver.retry_forever]
