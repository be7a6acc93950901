"""A healthy live session that must not notice the fuzzing going on next to it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import websocket

from devstack.stack import LocalStack
from tests.support.client import GatewayApi
from tests.support.fuzz_ws import connect, ws_url


class Listener:
    """A well-behaved client that keeps every message it receives, on its own thread."""

    def __init__(self, url: str):
        self.ws = connect(url)
        self.messages: list[dict] = []
        self.ended = ""
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        self.ws.settimeout(None)
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    self.ended = "closed"
                    return
                self.messages.append(json.loads(text))
        except Exception as exc:  # the socket ended: what ended it is kept for the check
            self.ended = repr(exc)

    def take(self, kind: str, timeout: float = 10) -> dict:
        """Wait for the first message of type ``kind`` (before the reader thread runs)."""
        self.ws.settimeout(timeout)
        while True:
            message = json.loads(self.ws.recv())
            if message["type"] == kind:
                return message

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close(timeout=1)


class HealthySession:
    """A creator (gateway 1) and two members (gateway 1 and 2) who chat while fuzzing runs."""

    def __init__(self, stack: LocalStack):
        api = GatewayApi(stack)
        users = [api.new_user() for _ in range(3)]
        self.creator, *members = (
            Listener(ws_url(stack, i, t)) for i, (_, t) in zip((0, 0, 1), users, strict=True)
        )
        self.members = members
        self.creator.ws.send(json.dumps({"type": "create_session", "workout_type": "hiit"}))
        self.session_id = self.creator.take("session_created")["session_id"]
        for member in self.members:
            member.ws.send(json.dumps({"type": "join_session", "session_id": self.session_id}))
            member.take("joined")
        for listener in (self.creator, *self.members):
            listener.start()
        self.sent = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> None:
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.1):  # 10 messages/s, under the per-socket limit
            try:
                self.creator.ws.send(
                    json.dumps({"type": "chat_message", "message": f"tick {self.sent}"})
                )
            except (OSError, websocket.WebSocketException) as exc:
                self.creator.ended = f"could not send: {exc!r}"
                return
            self.sent += 1

    def stop(self, timeout: float = 15) -> list[str]:
        """Stop chatting; return what went wrong for any member (empty: nothing)."""
        self._stop.set()
        self._ticker.join()
        expected = [f"tick {n}" for n in range(self.sent)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self._ticks(m) != expected for m in self.members):
            time.sleep(0.1)
        problems = [f"creator: {self.creator.ended}"] if self.creator.ended else []
        for n, member in enumerate(self.members, 1):
            problems += [f"member {n}: {p}" for p in self._member_problems(member, expected)]
        for listener in (self.creator, *self.members):
            listener.close()
        return problems

    def received(self) -> int:
        return sum(len(self._ticks(m)) for m in self.members)

    def _ticks(self, member: Listener) -> list[str]:
        return [m["message"] for m in member.messages if m.get("type") == "chat_message"]

    def _member_problems(self, member: Listener, expected: list[str]) -> Iterator[str]:
        if member.ended:
            yield f"its socket ended: {member.ended}"
        ticks = self._ticks(member)
        if ticks != expected:
            missing = len(set(expected) - set(ticks))
            yield f"saw {len(ticks)} of {len(expected)} messages, {missing} missing or out of order"
        seqs = [m["seq"] for m in member.messages if "seq" in m]
        if seqs != list(range(seqs[0], seqs[0] + len(seqs))) if seqs else False:
            yield f"sequence numbers with gaps or out of order: {seqs[:50]}"
