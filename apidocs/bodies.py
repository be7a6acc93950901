"""Request bodies of the public API: the services' own pydantic models, described field by field.

The document's schema of each body comes from its model, so it follows what the service
accepts; ``FIELD_NOTES`` adds what each field means and what validators enforce that the
model's schema can't show.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from activity_service import schemas as activity_schemas
from fitness.workouts import GOAL_TYPES, WORKOUT_TYPES
from gateway.sagas import schemas as saga_schemas
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
        activity_schemas.LogWorkoutBody,
    )
}

# What the gateway checks of a goal write's body before it starts the saga: types only. The
# user service's model (above) decides the rest during the saga, so the document shows that one.
SAGA_BODY_MODELS: dict[str, type[BaseModel]] = {
    "GoalBody": saga_schemas.NewGoal,
    "GoalChangeBody": saga_schemas.GoalChange,
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
        "goal_type": ("What the goal counts.", {"enum": list(GOAL_TYPES)}),
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
            "within the last 7 days, at most 5 minutes in the future (clock skew). Default: now.",
            {"format": "date-time"},
        ),
    },
    "LogWorkoutBody": {
        "workout_type": ("The kind of workout.", {"enum": list(WORKOUT_TYPES)}),
        "start_time": (
            "When it began: ISO-8601 (no offset = UTC), any past date from "
            f"{activity_schemas.EARLIEST_WORKOUT.date().isoformat()}.",
            {"format": "date-time"},
        ),
        "end_time": (
            "When it ended (or give `duration`): after the start, within 24 h of it, not in "
            "the future.",
            {"format": "date-time"},
        ),
        "duration": ("Its length in minutes (or give `end_time`).", {}),
        "distance_km": ("Distance covered, in km.", {}),
        "elevation_gain_m": ("Total climb, in metres.", {}),
        "average_heart_rate": ("Average heart rate, in beats per minute.", {}),
        "calories_burned": (
            "kcal, e.g. from a heart-rate device. Default: MET x your weight x hours.",
            {},
        ),
        "sets": (
            f"Sets of strength work, at most {activity_schemas.MAX_SETS}.",
            {},
        ),
    },
    "EndBody": {
        "end_time": (
            "When it ended: ISO-8601 (no offset = UTC), not before the start, at most 24 h after "
            "it, at most 5 minutes in the future (clock skew). Default: now.",
            {"format": "date-time"},
        ),
    },
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
