"""Schemas of the public API's answers: the views of each service and of the gateway."""

from __future__ import annotations

from typing import Any

from fitness.workouts import GOAL_TYPES, MIN_WORKOUT_MINUTES, SESSION_STATUSES, WORKOUT_TYPES
from gateway.sagas.goals import SAGAS
from gateway.sagas.log import TERMINAL_STATES


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(
    title: str,
    properties: dict[str, Any],
    description: str = "",
    required: list[str] | None = None,
) -> dict[str, Any]:
    """Return a closed object schema; every property is required unless ``required`` says."""
    schema: dict[str, Any] = {"title": title, "type": "object"}
    if description:
        schema["description"] = description
    schema["required"] = list(properties) if required is None else required
    schema.update(properties=properties, additionalProperties=False)
    return schema


def ref(kind: str, name: str) -> dict[str, str]:
    """Return a reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def _text(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema}


def _number(description: str, kind: str = "number") -> dict[str, Any]:
    return {"type": kind, "description": description}


_TIMESTAMP = {"type": "string", "format": "date-time"}
_WORKOUT_TYPE = {"type": "string", "enum": list(WORKOUT_TYPES)}
_GOAL_TYPE = _text("What it counts.", enum=list(GOAL_TYPES))
_ERROR_BODY = _object(
    "ErrorBody",
    {
        "code": _text("Machine-readable reason, e.g. `validation_failed`."),
        "message": _text("What went wrong, for people."),
        "fields": {
            "type": "object",
            "description": "Per field at fault: what is wrong with it. "
            "Present only when fields are at fault.",
            "additionalProperties": {"type": "string"},
        },
    },
    required=["code", "message"],
)

# What the API answers: the views in each service's ``service.py`` and the gateway's status.
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Error": _object("Error", {"error": _ERROR_BODY}, "The one shape of every 4xx and 5xx answer."),
    "SagaError": _object(
        "SagaError",
        {
            "error": _ERROR_BODY,
            "saga": _object(
                "SagaRef",
                {
                    "saga_id": _text("The saga's id (also in `X-Saga-ID`)."),
                    "state": _text(
                        "`failed`: a step was refused before anything changed; `compensated`: "
                        "the steps already done were undone.",
                        enum=["failed", "compensated"],
                    ),
                    "url": _text("Where its steps can be read: `GET /sagas/{saga_id}`."),
                },
            ),
        },
        "The error shape of a goal write. `saga` is there when the saga ran and failed or was "
        "compensated; without it the request was refused before a saga started.",
        required=["error"],
    ),
    "User": _object(
        "User",
        {
            "user_id": _text("The user's id."),
            "username": _text("Unique username."),
            "email": _text("Unique email, lower-case.", format="email"),
            "weight_kg": _nullable(_number("Body weight in kg, if given.")),
            "created_at": _TIMESTAMP,
        },
        "A user's profile.",
    ),
    "Token": _object(
        "Token",
        {
            "token": _text("Send as `Authorization: Bearer <token>`."),
            "user_id": _text("Your user id."),
            "expires_in": _number("Seconds the token stays valid.", "integer"),
        },
    ),
    "Goal": _object(
        "Goal",
        {
            "goal_id": _text("The goal's id."),
            "user_id": _text("Its owner."),
            "goal_type": _GOAL_TYPE,
            "workout_type": _nullable(_WORKOUT_TYPE),
            "target_value": _number("Workouts, minutes or kcal to reach."),
            "target_date": _text("Last day that counts.", format="date"),
            "current_progress": _number("Counted so far, rounded to 0.01."),
            "achieved": {"type": "boolean", "description": "Progress reached the target."},
            "achieved_at": _nullable(_TIMESTAMP),
            "status": _text("Cancelled goals stop counting.", enum=["active", "cancelled"]),
            "created_at": _TIMESTAMP,
        },
        "A goal with its progress.",
    ),
    "GoalList": _object("GoalList", {"goals": {"type": "array", "items": ref("schemas", "Goal")}}),
    "SagaAccepted": _object(
        "SagaAccepted",
        {
            "saga_id": _text("The saga's id."),
            "state": _text("Where it is now.", enum=["running", "compensating"]),
            "status_url": _text("Poll it (`GET /sagas/{saga_id}`) for the outcome."),
        },
        "A goal write whose saga had not finished when the gateway stopped waiting.",
    ),
    "Saga": _object(
        "Saga",
        {
            "saga_id": _text("The saga's id."),
            "type": _text("Which goal write it runs.", enum=list(SAGAS)),
            "state": _text(
                "`running` and `compensating` (undoing) go on by themselves, even across "
                "gateway restarts; `completed`, `compensated` and `failed` are final.",
                enum=["running", "compensating", *TERMINAL_STATES],
            ),
            "goal_id": _text("The goal it writes (chosen up front for a new goal)."),
            "error": _nullable(
                _object(
                    "SagaStepError",
                    {
                        **_ERROR_BODY["properties"],
                        "status": _number("The HTTP status the failure answers with.", "integer"),
                        "step": _text("The step that failed."),
                        "unknown_outcome": {
                            "type": "boolean",
                            "description": "The step timed out, so it may have acted; it "
                            "was undone too.",
                        },
                    },
                    "Why the saga is compensating, compensated or failed.",
                    required=["code", "message", "status", "step", "unknown_outcome"],
                )
            ),
            "history": {
                "type": "array",
                "description": "What happened, oldest first.",
                "items": _object(
                    "SagaEvent",
                    {
                        "at": _TIMESTAMP,
                        "step": _text(
                            "A step (`create-goal`, `read-goal`, `change-goal`, `cancel-goal`, "
                            "`register-goal`), or `saga` for the saga as a whole."
                        ),
                        "event": _text(
                            "For a step: `attempt`, `done`, `failed`, `compensating`, "
                            "`compensation-pending`, `compensated`. For `saga`: `started`, "
                            "`recovered` (another coordinator took it over) or its final state."
                        ),
                        "detail": _text("More about it, e.g. the error message."),
                    },
                    required=["at", "step", "event"],
                ),
            },
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
        },
        "How a goal write run as a saga went, step by step.",
    ),
    "Suggestions": _object(
        "Suggestions",
        {
            "user_id": _text("Whose they are."),
            "suggestions": {
                "type": "array",
                "description": "One per active goal whose date has not passed, soonest first.",
                "items": _object(
                    "Suggestion",
                    {
                        "goal_id": _text("The goal it serves."),
                        "goal_type": _GOAL_TYPE,
                        "workout_type": _WORKOUT_TYPE,
                        "duration_minutes": _number("Minutes per session.", "integer"),
                        "sessions_per_week": _number(
                            "Sessions a week to stay on track.", "integer"
                        ),
                        "remaining": _number("What is left of the target, rounded to 0.1."),
                        "days_left": _number(
                            "Days left, today and the target date included.", "integer"
                        ),
                        "reason": _text("The suggestion in words."),
                    },
                ),
            },
            "rule": _text("The rule the suggestions follow, in short."),
        },
        "Workouts suggested to reach your goals.",
    ),
    "WorkoutSession": _object(
        "WorkoutSession",
        {
            "session_id": _text("The session's id."),
            "user_id": _text("Its owner."),
            "workout_type": _WORKOUT_TYPE,
            "status": _text(
                "`active` until it ends; `ended` counts in statistics and goals; `discarded` "
                f"ended shorter than {MIN_WORKOUT_MINUTES:g} minute(s): kept, counted nowhere.",
                enum=list(SESSION_STATUSES),
            ),
            "source": _text(
                "Where it came from: started and ended `live`, a `group` session, `logged` "
                "after the fact, or read from a file (`import`).",
                enum=["live", "group", "logged", "import"],
            ),
            "start_time": _TIMESTAMP,
            "end_time": _nullable(_TIMESTAMP),
            "duration": _nullable(_number("Minutes, rounded to 0.01; null while active.")),
            "calories_burned": _nullable(
                _number(
                    "As given when logged, else MET x weight (kg) x hours; rounded to 0.1; "
                    "null while active."
                )
            ),
            "distance_km": _nullable(_number("Distance in km, when known.")),
            "elevation_gain_m": _nullable(_number("Total climb in metres, when known.")),
            "average_heart_rate": _nullable(_number("Beats per minute, when known.")),
            "sets": {
                "type": "array",
                "description": "Sets of strength work, when logged.",
                "items": ref("schemas", "WorkoutSet"),
            },
        },
        "A workout session.",
    ),
    "ImportUpload": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "The file: .gpx, .tcx, .fit or .csv, optionally gzipped (.gz); "
                "its name's extension says which.",
            },
            "workout_type": {
                **_WORKOUT_TYPE,
                "description": "For activities whose file names no sport we map.",
            },
        },
        "additionalProperties": False,
    },
    "Rejection": _object(
        "Rejection",
        {"where": _text("The file, track, session or row."), "reason": _text("Why.")},
    ),
    "ImportSummary": _object(
        "ImportSummary",
        {
            "imported": _number("Workouts stored now.", "integer"),
            "duplicates": _number("Activities imported before (this or another file).", "integer"),
            "rejected": _number("Activities or rows that could not be imported.", "integer"),
            "rejections": {
                "type": "array",
                "description": "Where and why, for the first 100 rejected.",
                "items": ref("schemas", "Rejection"),
            },
            "workout_ids": {
                "type": "array",
                "description": "The ids of the workouts stored now.",
                "items": {"type": "string"},
            },
        },
        "What an import did.",
    ),
    "ImportJob": _object(
        "ImportJob",
        {
            "import_id": _text("The job's id."),
            "state": _text(
                "`queued`, `running` (another replica takes over if this one dies), `done`, "
                "or `failed` (gave up after 5 attempts).",
                enum=["queued", "running", "done", "failed"],
            ),
            "file": _text("The archive's name."),
            "progress": _object(
                "ImportProgress",
                {
                    "done": _number("Activity files read so far.", "integer"),
                    "total": _number("Activity files in the archive.", "integer"),
                },
            ),
            "imported": _number("Workouts stored.", "integer"),
            "duplicates": _number("Activities imported before.", "integer"),
            "rejected": _number("Files or activities that could not be imported.", "integer"),
            "rejections": {
                "type": "array",
                "description": "Where and why, for the first 100 rejected.",
                "items": ref("schemas", "Rejection"),
            },
            "status_url": _text("Where to follow it."),
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "finished_at": _nullable(_TIMESTAMP),
        },
        "An archive import running in the background.",
    ),
    "WorkoutPage": _object(
        "WorkoutPage",
        {
            "workouts": {"type": "array", "items": ref("schemas", "WorkoutSession")},
            "total": _number("How many sessions you have in all.", "integer"),
            "limit": _number("The page size asked for.", "integer"),
            "offset": _number("How many were skipped.", "integer"),
        },
    ),
    "Statistics": _object(
        "Statistics",
        {
            "total_workouts": _number("Ended sessions.", "integer"),
            "total_duration": _number("Their minutes."),
            "total_calories_burned": _number("Their kcal."),
            "average_session_duration": _number("Minutes per session; 0 with none."),
        },
        "Totals over your ended sessions.",
    ),
    "ReplicaStatus": _object(
        "ReplicaStatus",
        {
            "url": _text("The replica's base URL."),
            "healthy": {"type": "boolean", "description": "Its last health check passed."},
            "breaker": _text("Circuit breaker state.", enum=["closed", "open", "half-open"]),
            "in_flight": _number("Requests running on it now.", "integer"),
            "requests": _number("Requests sent to it since the gateway started.", "integer"),
            "last_error": _nullable(_text("Its last failure.")),
            "last_error_at": _nullable(_TIMESTAMP),
        },
    ),
    "GatewayStatus": _object(
        "GatewayStatus",
        {
            "status": _text(
                "`degraded` when a service has no available replica.", enum=["ok", "degraded"]
            ),
            "service": _text("Always `gateway`.", const="gateway"),
            "upstreams": {
                "type": "object",
                "description": "Per service.",
                "additionalProperties": _object(
                    "UpstreamStatus",
                    {
                        "available": _number(
                            "How many replicas are healthy with a breaker not open.", "integer"
                        ),
                        "replicas": {
                            "type": "array",
                            "items": ref("schemas", "ReplicaStatus"),
                        },
                    },
                ),
            },
            "cache_nodes": {
                "type": "array",
                "description": "The Redis servers holding the cache, login limits and "
                "idempotency records; whether each is in the consistent-hash ring now.",
                "items": _object(
                    "CacheNode",
                    {
                        "url": _text("The server's URL."),
                        "in_ring": {"type": "boolean", "description": "It answers probes."},
                    },
                ),
            },
            "live": _object(
                "LiveStatus",
                {
                    "connections": _number("WebSockets open on this worker.", "integer"),
                    "sessions": _number("Live sessions they have joined.", "integer"),
                    "fanout": _object(
                        "FanoutTimes",
                        {
                            "events": _number("Session events timed (the last 1,000).", "integer"),
                            "sockets_max": _number("Most sockets one event went to.", "integer"),
                            "p50_ms": _number("Median fan-out time."),
                            "p99_ms": _number("99th percentile fan-out time."),
                            "max_ms": _number("Longest fan-out time."),
                        },
                        "How long this worker took to hand recent session events to all its "
                        "sockets, from the event's arrival from Redis to the last socket write: "
                        "the gateway's own share of live latency. Only `events` before the first.",
                        required=["events"],
                    ),
                },
                "The answering worker's WebSockets (each gateway worker has its own).",
            ),
        },
    ),
    "Readiness": _object(
        "Readiness",
        {
            "status": _text("Whether the gateway takes traffic.", enum=["ready", "unavailable"]),
            "service": _text("Always `gateway`.", const="gateway"),
        },
    ),
    "OpenApiDocument": {"type": "object", "description": "An OpenAPI 3.1 document."},
}
