"""The live-session operation of the load profile: two sockets on two gateways."""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid

import websocket
from locust import User, task

from bench.harness.seeding import Account
from bench.load.locustfile import RECORD, Scheduled

WS_TIMEOUT_SECONDS = 10.0


class LiveSession(Scheduled, User):
    """Two participants on two gateways: create, join, chat, exercise update, leave."""

    abstract = True
    kind = "live"

    @task
    def session(self) -> None:
        self.begin()
        creator, joiner = RECORD.shared(2)
        first = random.randrange(len(RECORD.gateways))
        gateways = [RECORD.gateways[first], RECORD.gateways[(first + 1) % len(RECORD.gateways)]]
        sockets: list[Socket] = []
        try:
            self._run(creator, joiner, gateways, sockets)
        except LiveStepFailed:
            pass
        finally:
            for sock in sockets:
                sock.close()

    def _run(self, creator: Account, joiner: Account, gateways, sockets) -> None:
        a = self._connect(gateways[0], creator, sockets)
        session_id = self._step(
            "ws create_session",
            a,
            {"type": "create_session", "workout_type": "hiit"},
            a,
            "session_created",
        )["session_id"]
        self._expect(a, "joined")
        b = self._connect(gateways[1], joiner, sockets)
        self._step(
            "ws join_session", b, {"type": "join_session", "session_id": session_id}, b, "joined"
        )
        text = uuid.uuid4().hex
        self._step(
            "ws chat_message (fan-out)",
            a,
            {"type": "chat_message", "message": text},
            b,
            "chat_message",
            message=text,
        )
        update = {"type": "exercise_update", "exercise": "squat", "sets": 3, "reps": 10}
        self._step(
            "ws exercise_update (fan-out)", b, update, a, "exercise_update", sender=joiner.user_id
        )
        self._step("ws leave_session", b, {"type": "leave_session"}, b, "left")
        self._step("ws leave_session", a, {"type": "leave_session"}, a, "left")

    def _connect(self, gateway: str, account: Account, sockets: list) -> Socket:
        started = time.time()
        try:
            sock = Socket(gateway, account)
            sockets.append(sock)
            sock.wait("welcome")
        except websocket.WebSocketBadStatusException as exc:
            self.note(
                "ws connect", started, "clear" if exc.status_code < 500 else "other", str(exc)
            )
            raise LiveStepFailed from None
        except (OSError, websocket.WebSocketException, LiveError) as exc:
            self.note("ws connect", started, getattr(exc, "outcome", "other"), str(exc))
            raise LiveStepFailed from None
        self.note("ws connect", started, "ok", "")
        return sock

    def _step(self, name: str, source, payload: dict, target, kind: str, **match) -> dict:
        """Send ``payload`` on ``source``; time until ``target`` gets the ``kind`` event."""
        started = time.time()
        try:
            source.send(payload)
            event = target.wait(kind, **match)
        except (OSError, websocket.WebSocketException, LiveError) as exc:
            self.note(name, started, getattr(exc, "outcome", "other"), str(exc))
            raise LiveStepFailed from None
        self.note(name, started, "ok", "")
        return event

    def _expect(self, sock: Socket, kind: str) -> None:
        try:
            sock.wait(kind)
        except (OSError, websocket.WebSocketException, LiveError) as exc:
            raise LiveStepFailed from exc


class LiveStepFailed(Exception):
    """One step of a live session failed (already recorded); the rest of it is skipped."""


class LiveError(Exception):
    """An error event (clear) or an unexpected silence/close (other) on a socket."""

    def __init__(self, message: str, outcome: str):
        super().__init__(message)
        self.outcome = outcome


class Socket:
    """One client socket of ``/ws``; keeps messages that arrive before they are waited for."""

    def __init__(self, gateway: str, account: Account):
        url = gateway.replace("http", "ws", 1) + "/ws"
        headers = [f"Authorization: Bearer {account.token}"]
        self.ws = websocket.create_connection(url, header=headers, timeout=WS_TIMEOUT_SECONDS)
        self.pending: list[dict] = []

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def wait(self, kind: str, **match) -> dict:
        deadline = time.monotonic() + WS_TIMEOUT_SECONDS
        while True:
            for message in self.pending:
                if message.get("type") == kind and all(
                    message.get(k) == v for k, v in match.items()
                ):
                    self.pending.remove(message)
                    return message
                if message.get("type") == "error":
                    raise LiveError(f"error event {message}", "clear")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LiveError(f"no {kind} within {WS_TIMEOUT_SECONDS}s", "other")
            self.ws.settimeout(remaining)
            try:
                self.pending.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                raise LiveError(f"no {kind} within {WS_TIMEOUT_SECONDS}s", "other") from None

    def close(self) -> None:
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.close(timeout=1)
