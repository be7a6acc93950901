"""Example values shown in the document: ids, bodies and error answers."""

from __future__ import annotations

from typing import Any

USER_ID = "919d5dad-63f2-443e-a8f1-1a12a7439986"
GOAL_ID = "7b8bd825-17e7-42df-9347-07c9d8f6d1b5"
SESSION_ID = "1f4626ec-a716-4b18-b35e-8f0e4f8af3d4"

USER = {
    "user_id": USER_ID,
    "username": "alice",
    "email": "alice@example.com",
    "weight_kg": 62.5,
    "created_at": "2026-11-23T19:47:30.793096+00:00",
}
GOAL = {
    "goal_id": GOAL_ID,
    "user_id": USER_ID,
    "goal_type": "active_minutes",
    "workout_type": None,
    "target_value": 150.0,
    "target_date": "2099-12-31",
    "current_progress": 30.0,
    "achieved": False,
    "achieved_at": None,
    "status": "active",
    "created_at": "2026-11-23T19:47:52.114571+00:00",
}
ACTIVE_SESSION = {
    "session_id": SESSION_ID,
    "user_id": USER_ID,
    "workout_type": "running",
    "status": "active",
    "start_time": "2026-11-23T19:09:00+00:00",
    "end_time": None,
    "duration": None,
    "calories_burned": None,
}
ENDED_SESSION = {
    **ACTIVE_SESSION,
    "status": "ended",
    "end_time": "2026-11-23T19:39:00+00:00",
    "duration": 30.0,
    "calories_burned": 313.6,
}
TOKEN = {
    "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI5MTlk…",
    "user_id": USER_ID,
    "expires_in": 3600,
}
STATISTICS = {
    "total_workouts": 4,
    "total_duration": 36.81,
    "total_calories_burned": 334.5,
    "average_session_duration": 9.2,
}
GATEWAY_STATUS = {
    "status": "ok",
    "service": "gateway",
    "upstreams": {
        "user_service": {
            "available": 1,
            "replicas": [
                {
                    "url": "http://127.0.0.1:5000",
                    "healthy": True,
                    "breaker": "closed",
                    "in_flight": 0,
                    "requests": 42,
                    "last_error": None,
                    "last_error_at": None,
                }
            ],
        },
    },
    "cache_nodes": [{"url": "redis://127.0.0.1:6380/0", "in_ring": True}],
}


def error(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """Return an answer in the one error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


INVALID_JSON = error("invalid_json", "The request body must be a JSON object.")
BAD_KEY = error(
    "validation_failed",
    "Idempotency-Key must be 1 to 255 printable ASCII characters.",
    {"Idempotency-Key": "invalid"},
)
KEY_IN_USE = error(
    "idempotency_in_progress",
    "A request with this Idempotency-Key is still running; retry shortly.",
)
USER_NOT_FOUND = error("user_not_found", f"No user '{USER_ID}'.")
GOAL_NOT_FOUND = error("goal_not_found", f"No goal '{GOAL_ID}' for this user.")
SESSION_NOT_FOUND = error("session_not_found", f"No workout session '{SESSION_ID}'.")


def invalid(*fields: tuple[str, str]) -> dict[str, Any]:
    """Return the answer to a body with these (field, problem) pairs."""
    return error("validation_failed", "Some fields are missing or invalid.", dict(fields))


UNAUTHENTICATED = error(
    "unauthenticated", "Send 'Authorization: Bearer <token>' from /users/login."
)
TOKEN_EXPIRED = error("unauthenticated", "The token has expired; log in again.")
FORBIDDEN = error("forbidden", "You can only act on your own data.")
TOO_LARGE = error(
    "request_entity_too_large", "The data value transmitted exceeds the capacity limit."
)
KEY_REUSED = error(
    "idempotency_key_reused",
    "This Idempotency-Key was used with a different request; use a new key.",
)
INTERNAL = error("internal_error", "Something went wrong on our side; try again.")
_MAYBE_APPLIED = (
    "The service did not answer in time; the request may or may not have been applied. "
    "Retry with an Idempotency-Key to make that safe."
)
UPSTREAM_FAILED = error("upstream_failed", _MAYBE_APPLIED)
UPSTREAM_TIMEOUT = error("upstream_timeout", _MAYBE_APPLIED)
UNAVAILABLE = error(
    "service_unavailable", "No user_service replica is available right now; retry in 5s."
)
