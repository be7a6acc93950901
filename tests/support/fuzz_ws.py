"""WebSocket fuzzing of ``/ws``, shared by ``tests/live/test_live_fuzz.py`` and ``bench/ws_fuzz.py``
(module ``bench.ws_fuzz``).

Three kinds of hostile input, each on its own socket of a fuzzing user:

- malformed frames, written as raw bytes after a real handshake (invalid UTF-8, binary,
  continuation frames out of order, reserved opcodes and bits, unmasked frames, oversized
  frames and control frames, bad close frames, random bytes): the answer must be an ``error``
  event, a normal reply for a valid payload, or a close with 1002/1007/1008/1009;
- random JSON messages from hypothesis strategies (``fuzz_ws_messages.py``);
- floods: messages faster than the rate limit, control-frame floods, many sockets opened and
  dropped without a close.

Meanwhile a ``fuzz_ws_session.HealthySession`` (one creator and two members, on both gateways)
keeps chatting; afterwards every member must have seen every event once, in order, no gap.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import websocket

from devstack.stack import LocalStack
from tests.support.stack import gateway_tier, log_events, make_replicas, running

PROPER_CLOSES = {1002, 1007, 1008, 1009}
LIVE_FUZZ_ENV = {
    "FITNESS_LOG_LEVEL": "INFO",
    "FITNESS_LIVE_LEAVE_GRACE_SECONDS": "1",
    "FITNESS_LIVE_HEARTBEAT_SECONDS": "0.5",
    "FITNESS_HEALTH_INTERVAL_SECONDS": "0.5",
}
TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
SOCKET_LIMIT = 64 * 1024  # gateway.live.SOCKET_MAX_MESSAGE_BYTES


@contextlib.contextmanager
def live_fuzz_stack(data_dir: Path) -> Iterator[LocalStack]:
    """One replica per service and two gateways (both serve ``/ws``) for the ``with`` block."""
    replicas = [*make_replicas(1), *gateway_tier(gateways=2)]
    with running(data_dir, replicas, LIVE_FUZZ_ENV) as stack:
        yield stack


def ws_url(stack: LocalStack, gateway_index: int, token: str) -> str:
    base = stack.replicas_of("gateway")[gateway_index].url.replace("http", "ws")
    return f"{base}/ws?token={token}"


def connect(url: str) -> websocket.WebSocket:
    """Open a socket and take its ``welcome``."""
    ws = websocket.create_connection(url, timeout=10)
    assert json.loads(ws.recv())["type"] == "welcome"
    return ws


def frame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length: int | None = None,
) -> bytes:
    """Build one raw frame, rules and all optional (RFC 6455 §5.2)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    masked = 0x80 if mask else 0
    if size < 126:
        header = struct.pack("!BB", first, masked | size)
    elif size < 65536:
        header = struct.pack("!BBH", first, masked | 126, size)
    else:
        header = struct.pack("!BBQ", first, masked | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass
class Answer:
    """What the server sent back on a fuzzed socket."""

    events: list[dict] = field(default_factory=list)
    close_code: int | None = None
    ended: str = ""  # "close", "reset", "timeout" or "eof"

    def describe(self) -> str:
        kinds = [e.get("code") or e.get("type") for e in self.events]
        return f"events {kinds}, ended by {self.ended} {self.close_code or ''}".strip()


def read_answer(ws: websocket.WebSocket, wait: float, until: Callable[[dict], bool]) -> Answer:
    """Read events until ``until`` holds for one, the socket closes, or ``wait`` passes."""
    answer = Answer()
    deadline = time.monotonic() + wait
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            ws.settimeout(remaining)
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                answer.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                answer.ended = "close"
                return answer
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                event = json.loads(data)
                answer.events.append(event)
                if until(event):
                    return answer
        answer.ended = "timeout"
    except websocket.WebSocketTimeoutException:
        answer.ended = "timeout"
    except (ConnectionResetError, BrokenPipeError):
        answer.ended = "reset"
    except websocket.WebSocketConnectionClosedException:
        answer.ended = "eof"
    return answer


# --- malformed frames ------------------------------------------------------------------------

PING_JSON = b'{"type":"ping","request_id":"frame"}'


@dataclass(frozen=True)
class FrameCase:
    name: str
    build: Callable[[], bytes]
    # "reply" (a pong), "error" (an error event), "close" (a proper close code), "refused" (a
    # proper close, or a reset: see test_live_fuzz.test_an_oversized_message_gets_1009)
    expect: str


FRAME_CASES = [
    FrameCase(
        "text frame with invalid UTF-8", lambda: frame(TEXT, b"\xff\xfe" + PING_JSON), "close"
    ),
    FrameCase("binary frame holding JSON", lambda: frame(BINARY, PING_JSON), "reply"),
    FrameCase("binary frame of random bytes", lambda: frame(BINARY, os.urandom(64)), "error"),
    FrameCase("continuation frame first", lambda: frame(CONTINUATION, b"abc"), "close"),
    FrameCase(
        "fragment, then a new text frame",
        lambda: frame(TEXT, b'{"type"', fin=False) + frame(TEXT, b"x"),
        "close",
    ),
    FrameCase(
        "message in two fragments",
        lambda: frame(TEXT, PING_JSON[:9], fin=False) + frame(CONTINUATION, PING_JSON[9:]),
        "reply",
    ),
    FrameCase(
        "ping between two fragments",
        lambda: (
            frame(TEXT, PING_JSON[:9], fin=False)
            + frame(PING, b"hi")
            + frame(CONTINUATION, PING_JSON[9:])
        ),
        "reply",
    ),
    FrameCase("reserved data opcode 0x3", lambda: frame(0x3, b"x"), "close"),
    FrameCase("reserved control opcode 0xB", lambda: frame(0xB, b"x"), "close"),
    FrameCase("RSV1 bit without an extension", lambda: frame(TEXT, PING_JSON, rsv=4), "close"),
    FrameCase("RSV3 bit", lambda: frame(TEXT, PING_JSON, rsv=1), "close"),
    FrameCase("unmasked client frame", lambda: frame(TEXT, PING_JSON, mask=False), "close"),
    FrameCase("ping of 200 bytes", lambda: frame(PING, b"x" * 200), "close"),
    FrameCase("fragmented ping", lambda: frame(PING, b"x", fin=False), "close"),
    FrameCase("close with code 999", lambda: frame(CLOSE, struct.pack("!H", 999)), "close"),
    FrameCase("close with a 1-byte body", lambda: frame(CLOSE, b"\x03"), "close"),
    FrameCase(
        "close with an invalid UTF-8 reason",
        lambda: frame(CLOSE, struct.pack("!H", 1000) + b"\xff"),
        "close",
    ),
    FrameCase("random bytes", lambda: b"\x8f" + os.urandom(63), "close"),
    FrameCase(
        "8 KiB text message (over the 4 KiB message limit)",
        lambda: frame(TEXT, json.dumps({"type": "chat_message", "message": "x" * 8000}).encode()),
        "error",
    ),
    FrameCase(
        "text frame just over the 64 KiB socket limit",
        lambda: frame(TEXT, b"x" * (SOCKET_LIMIT + 1)),
        "close",
    ),
    FrameCase(
        "65 fragments of 1 KiB, over the socket limit",
        lambda: b"".join(
            frame(TEXT if i == 0 else CONTINUATION, b"x" * 1024, fin=False) for i in range(65)
        ),
        "close",
    ),
    FrameCase(
        "length field claiming 2^62 bytes, then 64 KiB",
        # A zero mask keeps the payload ASCII. simple-websocket counts a text message's size
        # in characters: under a random mask that decodes as multibyte UTF-8 (1 run in ~40) the
        # 64 KiB stayed under the limit and the server rightly waited for the rest of 2^62.
        lambda: frame(TEXT, b"", length=2**62)[:10] + bytes(4) + b"x" * (SOCKET_LIMIT + 8),
        "refused",
    ),
]


def judge_frame(case: FrameCase, answer: Answer) -> bool:
    """Tell whether the server answered ``case`` as it should."""
    if case.expect == "reply":
        return any(e.get("type") == "pong" for e in answer.events)
    if case.expect == "error":
        return any(e.get("type") == "error" for e in answer.events)
    if case.expect == "refused" and answer.ended == "reset":
        return True
    return answer.ended == "close" and answer.close_code in PROPER_CLOSES


def send_frame_case(url: str, case: FrameCase) -> Answer:
    """Open a socket, write the case's raw bytes, and read the answer."""
    ws = connect(url)
    try:
        ws.sock.sendall(case.build())
        done = {"reply": lambda e: e.get("type") == "pong", "error": lambda e: True}
        return read_answer(ws, 10, done.get(case.expect, lambda e: False))
    except (ConnectionResetError, BrokenPipeError):
        return Answer(ended="reset")
    finally:
        with contextlib.suppress(Exception):
            ws.close(timeout=1)


@dataclass
class Tally:
    """Counts of one fuzzing kind, in the results table's terms."""

    sent: int = 0
    succeeded: int = 0  # a reply other than an error
    failed_clear: int = 0  # an error event or a proper close
    failed_other: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.sent += other.sent
        self.succeeded += other.succeeded
        self.failed_clear += other.failed_clear
        self.failed_other += other.failed_other
        self.problems += other.problems


# --- floods ----------------------------------------------------------------------------------


def flood_messages(url: str, count: int) -> Tally:
    """Send ``count`` chat messages without reading; the limiter must answer with errors."""
    tally = Tally(sent=count)
    ws = connect(url)
    ws.send(json.dumps({"type": "create_session", "workout_type": "hiit"}))
    for n in range(count):
        try:
            ws.send(json.dumps({"type": "chat_message", "message": f"flood {n}"}))
        except (ConnectionResetError, BrokenPipeError, websocket.WebSocketException):
            break
    answer = read_answer(ws, 5, lambda e: False)
    limited = sum(1 for e in answer.events if e.get("code") == "rate_limited")
    chats = sum(1 for e in answer.events if e.get("type") == "chat_message")
    tally.failed_clear, tally.succeeded = limited, chats
    tally.failed_other = count - limited - chats
    if answer.ended == "close" and answer.close_code in PROPER_CLOSES:
        tally.failed_other = 0  # dropped as too slow a reader: a proper close
    elif answer.ended not in ("timeout", "close") or not limited:
        tally.problems.append(f"message flood: {answer.describe()}")
    with contextlib.suppress(Exception):
        ws.close(timeout=1)
    return tally


def flood_pings(url: str, count: int) -> Tally:
    """Send ``count`` ping frames in one burst, then a message that must still be answered."""
    ws = connect(url)
    ws.sock.sendall(b"".join(frame(PING, b"p") for _ in range(count)))
    ws.send(json.dumps({"type": "ping", "request_id": "after-pings"}))
    answer = read_answer(ws, 20, lambda e: e.get("request_id") == "after-pings")
    tally = Tally(sent=count + 1)
    if answer.ended:
        tally.failed_other = 1
        tally.problems.append(f"ping flood: {answer.describe()}")
    else:
        tally.succeeded = count + 1
    with contextlib.suppress(Exception):
        ws.close(timeout=1)
    return tally


def flood_connections(url: str, count: int) -> Tally:
    """Open ``count`` sockets and drop each without a close frame."""
    tally = Tally(sent=count)
    for _ in range(count):
        try:
            ws = connect(url)
            ws.sock.close()  # no close frame: the TCP connection just goes away
            tally.succeeded += 1
        except (OSError, websocket.WebSocketException) as exc:
            tally.failed_other += 1
            tally.problems.append(f"connection flood: {exc!r}")
    return tally


# --- the gateway itself ----------------------------------------------------------------------


def gateway_workers(stack: LocalStack) -> dict[str, set[int]]:
    """The pids of each gateway's gunicorn workers (a worker that died is replaced: new pid)."""
    return {
        replica.name: {
            child.pid for child in psutil.Process(stack.processes[replica.name].pid).children()
        }
        for replica in stack.replicas_of("gateway")
    }


def gateway_errors(stack: LocalStack) -> list[str]:
    """Error-level log events of the gateways (an exception that escaped a socket handler)."""
    found = []
    for replica in stack.replicas_of("gateway"):
        for event in log_events(stack.log_path(replica.name)):
            if str(event.get("log.level", "")).lower() in ("error", "critical"):
                error = event.get("error") or {}
                found.append(f"{replica.name}: {event.get('message')}: {error.get('message', '')}")
    return found
