"""Live sessions for the mixed load: two participants per session, one on each gateway, chatting.

A chat message is acknowledged when its sender receives it back as a session event with a
``seq``. A participant whose socket drops reconnects (its own gateway first, then the other) and
joins again with ``last_seq``, so it must still see every event. Afterwards :meth:`verify`
checks that a fresh connection replays every acknowledged message, and that no participant has
a gap in the events it received.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid

import websocket

CHAT_PER_SECOND = 2.0
ACK_GRACE_SECONDS = 10.0  # an unacknowledged message is given up after this long


class Participant:
    """One user's socket in one session, with reconnects; counts its messages in ``tally``."""

    def __init__(self, gateways: list[str], user, home: int, tally, session_id: str = ""):
        self.urls = [g.replace("http", "ws", 1) + f"/ws?token={user.token}" for g in gateways]
        self.user, self.home, self.tally = user, home, tally
        self.session_id = session_id
        self.seen: dict[int, dict] = {}
        self.acked: dict[str, int] = {}  # message text -> seq
        self.pending: dict[str, float] = {}  # message text -> when sent
        self.reconnects = 0
        self.stopped = threading.Event()
        self.ws: websocket.WebSocket | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def last_seq(self) -> int:
        return max(self.seen, default=0)

    def open(self) -> None:
        """Connect (trying each gateway, own first) and create or join the session."""
        order = [self.urls[(self.home + n) % len(self.urls)] for n in range(len(self.urls))]
        for url in order:
            try:
                self.ws = websocket.create_connection(url, timeout=5)
                self._expect("welcome")
                if self.session_id:
                    self._send(type="join_session", session_id=self.session_id,
                               last_seq=self.last_seq)  # fmt: skip
                    self._expect("joined")
                else:
                    self._send(type="create_session", workout_type="hiit", name="fault suite")
                    self.session_id = self._expect("session_created")["session_id"]
                    self._expect("joined")
                return
            except (OSError, websocket.WebSocketException):
                self._close()
        raise ConnectionError("no gateway took the socket")

    def _send(self, **message) -> None:
        self.ws.send(json.dumps(message))

    def _expect(self, kind: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(max(0.05, deadline - time.monotonic()))
            if message and message.get("type") == kind:
                return message
            if message and message.get("type") == "error" and not message.get("request_id"):
                raise websocket.WebSocketException(f"refused: {message}")
        raise websocket.WebSocketTimeoutException(f"no {kind}")

    def _receive(self, timeout: float) -> dict | None:
        self.ws.settimeout(timeout)
        try:
            message = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        self._note(message)
        return message

    def _note(self, message: dict) -> None:
        if "seq" in message:
            self.seen[message["seq"]] = message
            text = message.get("message")
            if message.get("sender") == self.user.user_id and text in self.pending:
                del self.pending[text]
                self.acked[text] = message["seq"]
                self.tally.add("succeeded")
        elif message.get("type") == "error" and message.get("request_id") in self.pending:
            del self.pending[message["request_id"]]
            self.tally.add("failed_clear", f"live {message.get('code')}")

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stopped.is_set():
            try:
                if time.monotonic() >= due:
                    self._chat()
                    due += 1.0 / CHAT_PER_SECOND
                self._receive(max(0.01, due - time.monotonic()))
            except (OSError, websocket.WebSocketException):
                self._close()
                self._reconnect()
            self._give_up_stale()
        self._drain()

    def _chat(self) -> None:
        text = f"{self.user.user_id[:8]}-{uuid.uuid4().hex[:10]}"
        self.pending[text] = time.monotonic()
        # The text doubles as request_id, so an error event names the message it refuses.
        self._send(type="chat_message", session_id=self.session_id, message=text, request_id=text)

    def _reconnect(self) -> None:
        while not self.stopped.is_set():
            try:
                self.open()
                self.reconnects += 1
                return
            except ConnectionError:
                self.stopped.wait(0.5)

    def _give_up_stale(self) -> None:
        now = time.monotonic()
        for text, sent in list(self.pending.items()):
            if now - sent > ACK_GRACE_SECONDS:
                del self.pending[text]
                self.tally.add("failed_other", "live message never acknowledged")

    def _drain(self) -> None:
        """Wait briefly for the last acknowledgements, then give up on the rest."""
        deadline = time.monotonic() + 3
        while self.pending and self.ws is not None and time.monotonic() < deadline:
            try:
                self._receive(0.2)
            except (OSError, websocket.WebSocketException):
                break
        for _ in list(self.pending):
            self.tally.add("failed_other", "live message never acknowledged")
        self.pending.clear()
        self._close()

    def _close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self.ws.close(timeout=1)
        self.ws = None

    def gaps(self) -> int:
        """Return how many events up to the last one seen never arrived here."""
        return sum(1 for seq in range(1, self.last_seq + 1) if seq not in self.seen)


class LiveGroup:
    """``len(users) // 2`` sessions: a creator on the first gateway, a peer on the second."""

    def __init__(self, gateways: list[str], users: list, tally):
        self.gateways, self.tally = gateways, tally
        self.pairs = list(zip(users[0::2], users[1::2], strict=False))
        self.participants: list[Participant] = []

    def start(self) -> None:
        for creator_user, peer_user in self.pairs:
            creator = Participant(self.gateways, creator_user, 0, self.tally)
            creator.open()
            peer = Participant(self.gateways, peer_user, 1, self.tally, creator.session_id)
            peer.open()
            self.participants += [creator, peer]
        for participant in self.participants:
            participant.start()

    def stop(self) -> None:
        for participant in self.participants:
            participant.stopped.set()
        for participant in self.participants:
            participant.thread.join(timeout=30)

    def verify(self) -> tuple[int, list[str]]:
        """Replay each session on a fresh socket; return (acknowledged messages missing, notes)."""
        lost = 0
        for creator in self.participants[0::2]:
            acked = {
                seq: text
                for p in self.participants
                if p.session_id == creator.session_id
                for text, seq in p.acked.items()
            }
            replayed = self._replay(creator, max(acked, default=0))
            lost += sum(1 for seq, text in acked.items() if replayed.get(seq) != text)
        gaps = sum(p.gaps() for p in self.participants)
        reconnects = sum(p.reconnects for p in self.participants)
        acks = sum(len(p.acked) for p in self.participants)
        notes = [
            f"live: {len(self.participants)} sockets, {acks} chat messages acknowledged, "
            f"{reconnects} reconnects, {gaps} events a participant never received (counted as lost)"
        ]
        return lost + gaps, notes

    def _replay(self, creator: Participant, upto: int) -> dict[int, str]:
        reader = Participant(self.gateways, creator.user, 0, _NoTally(), creator.session_id)
        reader.open()
        deadline = time.monotonic() + 15
        while reader.last_seq < upto and time.monotonic() < deadline:
            reader._receive(0.5)
        reader._close()
        return {seq: event.get("message") for seq, event in reader.seen.items()}


class _NoTally:
    def add(self, *args) -> None:
        pass
