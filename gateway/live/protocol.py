"""The messages a client may send on ``/ws``, and the error events bad ones get.

Every message is a JSON object with a ``type``. Messages about a session name it with
``session_id``; it may be left out by a client that joined exactly one session (the original
design's ``chat_message`` is just ``{type, user_id, message}``). A ``user_id``, when given, must
be the caller's own. A ``request_id`` is echoed back on the direct answer or error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from fitness.workouts import WORKOUT_TYPES


class LiveError(Exception):
    """A message the server refuses; the client gets an ``error`` event, the session goes on."""

    def __init__(self, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}


# Text is stored (the session's timeline, on the activity store): no NUL characters, which
# FerretDB refuses in strings (its known difference 2), and no reader wants.
_NO_NUL = r"^[^\x00]*$"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=_NO_NUL)]
Name = Annotated[str, Field(min_length=1, max_length=80, pattern=_NO_NUL)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: str
    request_id: Annotated[str, Field(max_length=64, pattern=_NO_NUL)] | None = None


class InSession(Message):
    session_id: Id | None = None
    user_id: Id | None = None


if TYPE_CHECKING:
    WorkoutType = str
else:
    WorkoutType = Literal[WORKOUT_TYPES]


class CreateSession(Message):
    type: Literal["create_session"]
    workout_type: WorkoutType = "strength"
    name: Annotated[str, Field(max_length=80, pattern=_NO_NUL)] = ""


class JoinSession(InSession):
    type: Literal["join_session"]
    session_id: Id
    last_seq: Annotated[int, Field(ge=0)] = 0


class LeaveSession(InSession):
    type: Literal["leave_session"]


class ChatMessage(InSession):
    type: Literal["chat_message"]
    message: Annotated[str, Field(min_length=1, max_length=1000, pattern=_NO_NUL)]


class ExerciseUpdate(InSession):
    type: Literal["exercise_update"]
    exercise: Name
    sets: Annotated[int, Field(ge=1, le=100)] | None = None
    reps: Annotated[int, Field(ge=1, le=1000)] | None = None
    weight_kg: Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)] | None = None
    duration_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None


class ProposeExercise(InSession):
    type: Literal["propose_exercise"]
    exercise: Name


class Vote(InSession):
    type: Literal["vote"]
    vote_id: Id
    choice: Literal["yes", "no"]


class CloseVote(InSession):
    type: Literal["close_vote"]
    vote_id: Id


class Presence(InSession):
    type: Literal["presence"]


class EndSession(InSession):
    type: Literal["end_session"]


class Ping(Message):
    type: Literal["ping"]


MESSAGES: dict[str, type[Message]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in (
        CreateSession,
        JoinSession,
        LeaveSession,
        ChatMessage,
        ExerciseUpdate,
        ProposeExercise,
        Vote,
        CloseVote,
        Presence,
        EndSession,
        Ping,
    )
}


def parse(raw: str | bytes, max_bytes: int) -> Message:
    """Return the message in ``raw``, or raise LiveError saying what is wrong with it."""
    if _too_large(raw, max_bytes):
        raise LiveError("message_too_large", f"Messages are at most {max_bytes} bytes.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # [[[[… nests past the parser
        raise LiveError("malformed_json", "A message must be one JSON object.") from None
    if not isinstance(data, dict):
        raise LiveError("malformed_json", "A message must be one JSON object.")
    kind = data.get("type")
    model = MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(MESSAGES))
        raise LiveError("unknown_type", f"Unknown message type {kind!r}; known: {known}.")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = _fields(exc)
        raise LiveError(
            "invalid_message", "Some fields are missing or invalid.", problems
        ) from None


def _too_large(raw: str | bytes, max_bytes: int) -> bool:
    """Whether ``raw`` is over ``max_bytes`` of UTF-8: a text message arrives decoded, and one
    character of it may have been up to 4 bytes on the wire."""
    if isinstance(raw, str):
        if len(raw) * 4 <= max_bytes:  # under the limit whatever it holds
            return False
        raw = raw.encode("utf-8", "surrogatepass")
    return len(raw) > max_bytes


def error_event(error: LiveError, request: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
    if error.fields:
        event["fields"] = error.fields
    if request:
        event.update({k: v for k, v in request.items() if k in ("request_id", "request_type")})
    return event


# Plainer words than pydantic's for the problems whose wording would puzzle a client.
_PLAIN = {
    "extra_forbidden": "Unknown field.",
    "string_pattern_mismatch": "Must not contain NUL (\\u0000) characters.",
}


def _fields(exc: pydantic.ValidationError) -> dict[str, str]:
    found = {}
    for problem in exc.errors():
        name = ".".join(str(part) for part in problem["loc"]) or "message"
        found[name] = _PLAIN.get(problem["type"], problem["msg"])
    return found
