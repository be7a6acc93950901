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
ACTIVE_SESSION: dict[str, Any] = {
    "session_id": SESSION_ID,
    "user_id": USER_ID,
    "workout_type": "running",
    "status": "active",
    "source": "live",
    "start_time": "2026-11-23T19:09:00+00:00",
    "end_time": None,
    "duration": None,
    "calories_burned": None,
    "distance_km": None,
    "elevation_gain_m": None,
    "average_heart_rate": None,
    "sets": [],
}
ENDED_SESSION = {
    **ACTIVE_SESSION,
    "status": "ended",
    "end_time": "2026-11-23T19:39:00+00:00",
    "duration": 30.0,
    "calories_burned": 313.6,
}
LOGGED_SESSION: dict[str, Any] = {
    **ENDED_SESSION,
    "session_id": "0c1e3e4a-52f2-5c86-9d0e-8f7b1a2c3d4e",
    "workout_type": "strength",
    "source": "logged",
    "start_time": "2026-10-02T07:15:00+00:00",
    "end_time": "2026-10-02T08:00:00+00:00",
    "duration": 45.0,
    "calories_burned": 315.0,
    "sets": [
        {"exercise": "Squat", "muscle_group": "Legs", "reps": 5, "weight_kg": 100.0},
        {"exercise": "Squat", "muscle_group": "Legs", "reps": 5, "weight_kg": 100.0},
    ],
}
IMPORT_SUMMARY = {
    "imported": 2,
    "duplicates": 1,
    "rejected": 1,
    "rejections": [{"where": "log.csv row 4", "reason": "date '31/12/2025' is not YYYY-MM-DD"}],
    "workout_ids": ["0c1e3e4a-52f2-5c86-9d0e-8f7b1a2c3d4e", "5d2f6a1b-7c3e-5e9f-8a0b-1c2d3e4f5a6b"],
}
IMPORT_JOB = {
    "import_id": "3f0c8f5e-2b7a-5d41-9e63-0a1b2c3d4e5f",
    "state": "done",
    "file": "export_12345678.zip",
    "progress": {"done": 412, "total": 412},
    "imported": 405,
    "duplicates": 5,
    "rejected": 2,
    "rejections": [
        {"where": "activities/871.fit", "reason": "it is not a complete FIT file (unexpected EOF)"},
        {"where": "activities/902.gpx", "reason": "its points have no times"},
    ],
    "status_url": "/imports/3f0c8f5e-2b7a-5d41-9e63-0a1b2c3d4e5f",
    "created_at": "2026-12-07T08:30:00+00:00",
    "updated_at": "2026-12-07T08:31:12+00:00",
    "finished_at": "2026-12-07T08:31:12+00:00",
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
    "live": {
        "connections": 2,
        "sessions": 1,
        "fanout": {"events": 12, "sockets_max": 2, "p50_ms": 0.041, "p99_ms": 0.09, "max_ms": 0.09},
    },
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
FILE_TOO_LARGE = error(
    "file_too_large",
    "'ride.gpx' is too large: one file may be at most 16 MiB; only a zip archive may be larger.",
    {"file": "one file may be at most 16 MiB; only a zip archive may be larger"},
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


# --- goal writes run as sagas --------------------------------------------------------------

SAGA_ID = "5d0c7f0e-3b1a-4c6e-9f2d-8a4b6c1e2f30"
SAGA_URL = f"/sagas/{SAGA_ID}"
SAGA_RUNNING = {"saga_id": SAGA_ID, "state": "running", "status_url": SAGA_URL}
UNDONE = ". Every step already done was undone; nothing changed."  # appended when compensated
SERVICE_DOWN = "ActivityService is unavailable: UNAVAILABLE"
SAGA = {
    "saga_id": SAGA_ID,
    "type": "create_goal",
    "state": "compensated",
    "goal_id": GOAL_ID,
    "error": {
        "code": "unavailable",
        "message": SERVICE_DOWN,
        "status": 503,
        "step": "register-goal",
        "unknown_outcome": False,
    },
    "history": [
        {"at": "2026-11-23T19:47:52.101+00:00", "step": "saga", "event": "started"},
        {"at": "2026-11-23T19:47:52.102+00:00", "step": "create-goal", "event": "attempt"},
        {"at": "2026-11-23T19:47:52.114+00:00", "step": "create-goal", "event": "done"},
        {"at": "2026-11-23T19:47:52.115+00:00", "step": "register-goal", "event": "attempt"},
        {
            "at": "2026-11-23T19:47:57.120+00:00",
            "step": "register-goal",
            "event": "failed",
            "detail": SERVICE_DOWN,
        },
        {"at": "2026-11-23T19:47:57.121+00:00", "step": "create-goal", "event": "compensating"},
        {"at": "2026-11-23T19:47:57.135+00:00", "step": "create-goal", "event": "compensated"},
        {"at": "2026-11-23T19:47:57.136+00:00", "step": "saga", "event": "compensated"},
    ],
    "created_at": "2026-11-23T19:47:52.101+00:00",
    "updated_at": "2026-11-23T19:47:57.136+00:00",
}
SUGGESTIONS = {
    "user_id": USER_ID,
    "suggestions": [
        {
            "goal_id": GOAL_ID,
            "goal_type": "active_minutes",
            "workout_type": "running",
            "duration_minutes": 30,
            "sessions_per_week": 3,
            "remaining": 90.0,
            "days_left": 6,
            "reason": "90 minutes to go in 6 day(s).",
        }
    ],
    "rule": "remaining target spread evenly over the days left; see docs/api.md",
}


def in_saga(answer: dict[str, Any], state: str = "failed") -> dict[str, Any]:
    """Return an error ``answer`` as a saga that failed or was compensated gives it."""
    body = dict(answer["error"])
    if state == "compensated":
        body["message"] = body["message"].rstrip(".") + UNDONE
    return {"error": body, "saga": {"saga_id": SAGA_ID, "state": state, "url": SAGA_URL}}


GOAL_NOT_ACTIVE = error("goal_not_active", f"Goal '{GOAL_ID}' is cancelled; it cannot be changed.")
GOAL_BUSY = error(
    "goal_busy", f"Goal '{GOAL_ID}' is being changed by another request; retry shortly."
)
COMPENSATED = in_saga(error("unavailable", SERVICE_DOWN), "compensated")
SAGA_LOG_DOWN = error("unavailable", "The saga log is unavailable; nothing was changed. Retry.")
