"""Schemas of the public API: request bodies from the services' models, responses written here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from activity_service import schemas as activity_schemas
from fitness.workouts import WORKOUT_TYPES
from user_service import schemas as user_schemas

BODY_MODELS: dict[str, type[BaseModel]] = {
    model.__name__: model
    for model in (
        user_schemas.RegisterBody,
        user_schemas.LoginBody,
        user_schemas.ProfileBody,
        user_schemas.GoalBody,
        user_schemas.GoalChangeBody,
        activity_schemas.StartBody,
        activity_schemas.EndBody,
    )
}

# What each body field means, plus what its validators enforce that pydantic's schema can't see.
FIELD_NOTES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "RegisterBody": {
        # The validator's own pattern: the document can't drift from it.
        "username": (
            "3 to 32 letters, digits, '.', '_' or '-'; unique.",
            {"pattern": user_schemas._USERNAME.pattern},
        ),
        "email": ("Stored lower-case; unique.", {"format": "email"}),
        "password": ("8 to 128 characters.", {}),
        "weight_kg": ("Body weight in kg, used for the calories of workouts.", {}),
    },
    "LoginBody": {
        "email": ("The account's email (compared lower-case).", {}),
        "password": ("The account's password.", {}),
    },
    "ProfileBody": {
        "weight_kg": ("New weight in kg; `null` clears it, omitted leaves it unchanged.", {}),
    },
    "GoalBody": {
        "goal_type": ("What the goal counts.", {"enum": list(user_schemas.GOAL_TYPES)}),
        "target_value": ("Workouts, minutes or kcal to reach.", {}),
        "target_date": (
            "Last day that counts: YYYY-MM-DD, today (UTC) or later.",
            {"format": "date"},
        ),
        "workout_type": (
            "Count only this type of workout; `null` counts every type.",
            {"enum": list(WORKOUT_TYPES)},
        ),
    },
    "GoalChangeBody": {
        "target_value": ("New target; omitted or `null` keeps it.", {}),
        "target_date": (
            "New last day (YYYY-MM-DD, not in the past); omitted or `null` keeps it.",
            {"format": "date"},
        ),
    },
    "StartBody": {
        "user_id": ("Your own user id.", {}),
        "workout_type": (
            "The kind of workout (sets its MET value).",
            {"enum": list(WORKOUT_TYPES)},
        ),
        "start_time": (
            "When it began, to log a workout started earlier: ISO-8601 (no offset = UTC), "
            "within the last 7 days, not in the future. Default: now.",
            {"format": "date-time"},
        ),
    },
    "EndBody": {
        "end_time": (
            "When it ended: ISO-8601 (no offset = UTC), not before the start, at most 24 h after "
            "it, not in the future. Default: now.",
            {"format": "date-time"},
        ),
    },
}


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

# What the API answers: the views in each service's ``service.py`` and the gateway's status.
RESPONSE_SCHEMAS: dict[str, Any] = {
    "Error": _object(
        "Error",
        {
            "error": _object(
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
            ),
        },
        "The one shape of every 4xx and 5xx answer.",
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
            "goal_type": _text("What it counts.", enum=list(user_schemas.GOAL_TYPES)),
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
    "WorkoutSession": _object(
        "WorkoutSession",
        {
            "session_id": _text("The session's id."),
            "user_id": _text("Its owner."),
            "workout_type": _WORKOUT_TYPE,
            "status": _text("Whether it has ended.", enum=["active", "ended"]),
            "start_time": _TIMESTAMP,
            "end_time": _nullable(_TIMESTAMP),
            "duration": _nullable(_number("Minutes, rounded to 0.01; null while active.")),
            "calories_burned": _nullable(
                _number("MET x weight (kg) x hours, rounded to 0.1; null while active.")
            ),
        },
        "A workout session.",
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


def body_schemas() -> dict[str, Any]:
    """Return the request body schemas, from the pydantic models plus FIELD_NOTES."""
    schemas = {}
    for name, model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        notes = FIELD_NOTES[name]
        if set(notes) != set(schema["properties"]):
            raise ValueError(
                f"FIELD_NOTES[{name!r}] must describe exactly {model.__name__}'s fields"
            )
        for field_name, (description, constraints) in notes.items():
            prop = schema["properties"][field_name]
            prop["description"] = description
            for branch in prop.get("anyOf", [prop]):
                if branch.get("type") != "null":
                    branch.update(constraints)
        schemas[name] = schema
    return schemas
