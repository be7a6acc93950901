"""Random messages on ``/ws`` from hypothesis strategies, each judged by the server's answer.

Every message type with wrong types, missing and extra fields, huge strings, NaN and huge
numbers and nested values (to a depth the parser handles; deeper is the known bug tested in
``test_live_fuzz``), plus raw text that is no JSON at all. After each message a ``ping`` with a
fresh ``request_id`` must get its ``pong``; everything in between must be replies or ``error``
events, and a socket closed on the way counts only with 1002/1007/1008/1009.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fitness.workouts import WORKOUT_TYPES
from gateway.live.protocol import MESSAGES
from tests.support.fuzz_ws import PROPER_CLOSES, Answer, Tally, connect, read_answer

FIELDS = sorted({name for model in MESSAGES.values() for name in model.model_fields})
_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["yes", "no", "squat", "hiit", "running", "", " ", "\u0000", "$gt"])
)
_json = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_value = (
    _json
    | st.text(min_size=1000, max_size=6000)  # huge strings, some over the message limit
    | st.integers(min_value=0, max_value=40).map(lambda depth: _nested(depth))
)
_fields = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), _value, max_size=6)
_id = st.text(min_size=1, max_size=64)
_name = st.text(min_size=1, max_size=80)
VALID_FIELDS: dict[str, dict[str, st.SearchStrategy]] = {
    "create_session": {
        "workout_type": st.sampled_from(WORKOUT_TYPES),
        "name": st.text(max_size=80),
    },
    "join_session": {"session_id": _id, "last_seq": st.integers(min_value=0, max_value=10**6)},
    "leave_session": {},
    "chat_message": {"message": st.text(min_size=1, max_size=1000)},
    "exercise_update": {
        "exercise": _name,
        "sets": st.integers(min_value=1, max_value=100),
        "reps": st.integers(min_value=1, max_value=1000),
        "weight_kg": st.floats(min_value=0, max_value=1000),
        "duration_seconds": st.integers(min_value=1, max_value=86400),
    },
    "propose_exercise": {"exercise": _name},
    "vote": {"vote_id": _id, "choice": st.sampled_from(["yes", "no"])},
    "close_vote": {"vote_id": _id},
    "presence": {},
    "end_session": {},
    "ping": {},
}


@st.composite
def _nearly_valid(draw: st.DrawFn) -> dict:
    """A valid message of some type, then at most one mutation of one field."""
    kind = draw(st.sampled_from(sorted(VALID_FIELDS)))
    message = {"type": kind, **draw(st.fixed_dictionaries(VALID_FIELDS[kind]))}
    mutation = draw(st.sampled_from(["none", "none", "drop", "retype", "extra"]))
    fields = sorted(set(message) - {"type"})
    if mutation == "drop" and fields:
        message.pop(draw(st.sampled_from(fields)))
    elif mutation == "retype" and fields:
        message[draw(st.sampled_from(fields))] = draw(_value)
    elif mutation == "extra":
        message[draw(st.sampled_from(FIELDS) | st.text(max_size=12))] = draw(_value)
    return message


message_strategy = st.one_of(
    _nearly_valid(),
    _nearly_valid(),
    st.builds(
        lambda kind, rest: {**rest, "type": kind}, st.sampled_from(sorted(MESSAGES)), _fields
    ),
    st.builds(lambda kind, rest: {**rest, "type": kind}, _json, _fields),
    _fields,  # no type at all
    _json,  # not an object, or an object of anything
).map(lambda message: json.dumps(message, allow_nan=True))
raw_text_strategy = st.text(max_size=300)  # mostly not JSON at all


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


_NO_SESSION = ("session_required", "not_joined", "session_ended")


def _ends_sync(event: dict, sync: str) -> bool:
    return event.get("request_id") == sync or event.get("code") == "rate_limited"


class MessageFuzzer:
    """Sends one message at a time on a socket and checks the server's answer to it."""

    def __init__(self, url: str):
        self.url = url
        self.ws: websocket.WebSocket | None = None
        self.tally = Tally()
        self.count = 0

    def send(self, text: str) -> None:
        """Send ``text``, then a ping; judge everything that came back before the pong."""
        if self.ws is None:
            self.ws = connect(self.url)
            self._enter_a_session()
        self.tally.sent += 1
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self.ws.send(text)
        answer = self._sync()
        self._judge(text, answer)

    def _enter_a_session(self) -> None:
        """Create a session first, so valid session messages get replies, not errors."""
        self.ws.send(json.dumps({"type": "create_session", "workout_type": "hiit"}))
        read_answer(self.ws, 10, lambda e: e.get("type") == "joined")

    def _sync(self) -> Answer:
        """Ping until the pong comes; a ping the rate limiter refused is sent again later."""
        answer = Answer()
        for _ in range(5):
            self.count += 1
            sync = f"sync-{self.count}"
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self.ws.send(json.dumps({"type": "ping", "request_id": sync}))
            part = read_answer(self.ws, 15, lambda e, sync=sync: _ends_sync(e, sync))
            answer.events += part.events
            answer.close_code, answer.ended = part.close_code, part.ended
            if part.ended or any(e.get("request_id") == sync for e in part.events):
                return answer
            time.sleep(1.05)  # rate limited: the window is one second
        answer.ended = "rate limited five times in a row"
        return answer

    def _judge(self, text: str, answer: Answer) -> None:
        replies = [e for e in answer.events if not str(e.get("request_id", "")).startswith("sync-")]
        if answer.ended == "close" and answer.close_code in PROPER_CLOSES:
            self.tally.failed_clear += 1
        elif answer.ended:  # closed badly, reset, or no pong in time
            self.tally.failed_other += 1
            self.tally.problems.append(f"{text[:300]!r} -> {answer.describe()}")
        elif any(e.get("type") == "error" for e in replies):
            self.tally.failed_clear += 1
        else:
            self.tally.succeeded += 1
        if answer.ended:
            self.close()
        elif any(e.get("code") in _NO_SESSION for e in replies):
            self.close()  # a new socket in one new session: valid messages count again

    def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close(timeout=1)
        self.ws = None


def fuzz_messages(url: str, examples: int, seed: int | None = None) -> Tally:
    """Send ``examples`` hypothesis-made messages (JSON and raw text) and judge each answer."""
    fuzzer = MessageFuzzer(url)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
        phases=["generate"],  # judged here, not raised: no shrinking
    )
    @given(st.one_of(message_strategy, message_strategy, raw_text_strategy))
    def check(text: str) -> None:
        fuzzer.send(text)

    try:
        check()
    finally:
        fuzzer.close()
    return fuzzer.tally
