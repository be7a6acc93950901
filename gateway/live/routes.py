"""``/ws``: the live group-session socket (flask-sock), and ``/live``, a page to try it.

The login token is checked before the upgrade (``?token=`` for browsers, or a Bearer header):
a bad or expired token gets 401 and no socket. A token that expires while connected closes the
socket with 1008 (policy violation) at the next message.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import redis
from flask import Blueprint, Response, current_app, g, request
from flask_sock import Sock
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from simple_websocket import ConnectionClosed

from fitness.auth import verify_claims
from fitness.errors import AuthenticationFailed
from gateway.live import protocol
from gateway.live.connection import Connection
from gateway.live.protocol import LiveError
from gateway.pages import html_page

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__)
sock = Sock()
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
PAGE = Path(__file__).with_name("page.html")
_limiter = FixedWindowRateLimiter(MemoryStorage())


@bp.before_request
def authenticate() -> None:
    """Refuse the upgrade without a valid token."""
    if request.path != "/ws":
        return
    token = request.args.get("token") or _bearer()
    if not token:
        raise AuthenticationFailed("Send the login token: ?token=… or Authorization: Bearer.")
    claims = verify_claims(token, current_app.config["JWT_SECRET"])
    g.live_user, g.live_expires = str(claims["sub"]), float(claims["exp"])


@bp.get("/live")
def page() -> Response:
    return html_page(PAGE)


@sock.route("/ws", bp=bp)
def websocket(ws) -> None:
    live = current_app.extensions["live"]
    connection = Connection(ws, g.live_user, live.settings.queue_size)
    live.hub.add(connection)
    connection.send(
        {"type": "welcome", "user_id": connection.user_id, "connection_id": connection.id}
    )
    try:
        _serve(ws, connection, live, g.live_expires)
    except ConnectionClosed:
        pass
    except Exception:
        # Never let an error escape into flask-sock, which would write an HTTP 500 into the
        # upgraded socket; close it as a server error instead.
        log.exception("live socket %s failed", connection.id)
        ws.close(reason=INTERNAL_ERROR, message="server error")
    finally:
        live.hub.remove(connection)
        try:
            live.disconnected(connection)
        except Exception:  # e.g. Redis gone: presence expires on its own
            log.warning("could not record that live socket %s left", connection.id)
        connection.close()


def _serve(ws, connection: Connection, live, expires_at: float) -> None:
    settings = live.settings
    rate = parse(settings.messages_per_second)
    while not connection.closed.is_set():
        # Presence is refreshed for all of a worker's sockets at once (heartbeats_forever).
        raw = ws.receive(timeout=settings.heartbeat_seconds)
        if raw is None:
            continue
        if time.time() >= expires_at:
            connection.send({"type": "error", "code": "token_expired", "message": "Log in again."})
            ws.close(reason=POLICY_VIOLATION, message="token expired")
            return
        if not _limiter.hit(rate, "live", connection.id):
            connection.send(_error(LiveError("rate_limited", "Too many messages; slow down.")))
            continue
        _answer(raw, connection, live)


def _answer(raw: str | bytes, connection: Connection, live) -> None:
    request_info: dict = {}
    try:
        message = protocol.parse(raw, live.settings.max_message_bytes)
        request_info = {"request_id": message.request_id, "request_type": message.type}
        reply = live.handle(connection, message)
        if reply is not None:
            connection.send(
                {**reply, **({"request_id": message.request_id} if message.request_id else {})}
            )
    except LiveError as error:
        connection.send(_error(error, request_info))
    except redis.RedisError:
        outage = LiveError("unavailable", "Live sessions are unavailable right now; retry.")
        connection.send(_error(outage, request_info))


def _error(error: LiveError, request_info: dict | None = None) -> dict:
    info = {k: v for k, v in (request_info or {}).items() if v is not None}
    return protocol.error_event(error, info)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""
