"""The public operations: what each one takes, answers and may fail with (goals: ``goals``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apidocs.examples import (
    ACTIVE_SESSION,
    ENDED_SESSION,
    GATEWAY_STATUS,
    IMPORT_JOB,
    IMPORT_SUMMARY,
    LOGGED_SESSION,
    SESSION_ID,
    SESSION_NOT_FOUND,
    STATISTICS,
    TOKEN,
    USER,
    USER_ID,
    USER_NOT_FOUND,
    error,
    invalid,
)
from fitness.workouts import MIN_WORKOUT_MINUTES, WORKOUT_TYPES


@dataclass(frozen=True)
class Operation:
    """One public operation, in the terms the document is built from."""

    method: str
    path: str
    tag: str
    operation_id: str
    summary: str
    ok: tuple[int, str, Any]  # status, response schema, example
    description: str = ""
    body: str | None = None  # a BODY_MODELS name
    body_example: dict[str, Any] | None = None
    body_required: bool = False  # True: refused without a field, though each one is optional
    upload: bool = False  # True: the body is a multipart/form-data file upload (``UPLOAD``)
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    public: bool = False
    query: tuple[str, ...] = ()
    own: bool = False  # answered by the gateway itself, not forwarded to a service
    saga: str | None = None  # the saga type, when the gateway runs the operation as a saga
    responses: dict[str, Any] = field(default_factory=dict)  # more answers, as they stand

    @property
    def writes(self) -> bool:
        """Tell whether the operation changes state (and so takes an Idempotency-Key)."""
        return self.method in {"post", "patch", "delete"}

    @property
    def forwarded(self) -> bool:
        """Tell whether the gateway forwards the operation to a replica of a service."""
        return not (self.own or self.saga)


ACCOUNT_OPERATIONS = [
    Operation(
        method="post",
        path="/users/register",
        tag="accounts",
        operation_id="registerUser",
        summary="Create an account",
        description="Register with a unique username and email; then log in for a token.",
        ok=(201, "User", USER),
        body="RegisterBody",
        body_example={
            "username": "alice",
            "email": "alice@example.com",
            "password": "correct-horse-battery",
            "weight_kg": 62.5,
        },
        errors={
            400: [
                invalid(
                    ("username", "3 to 32 letters, digits, '.', '_' or '-'."),
                    ("email", "Not a valid email address."),
                    ("password", "String should have at least 8 characters"),
                    ("age", "Unknown field."),
                )
            ],
            409: [
                error(
                    "account_exists",
                    "That username is already registered.",
                    {"username": "Already registered."},
                )
            ],
        },
        public=True,
    ),
    Operation(
        method="post",
        path="/users/login",
        tag="accounts",
        operation_id="login",
        summary="Log in",
        description="Exchange email and password for a bearer token. A wrong email and a wrong "
        "password get the same 401. Too many failed logins for one account or from one address "
        "get 429 until `Retry-After` seconds have passed.",
        ok=(200, "Token", TOKEN),
        body="LoginBody",
        body_example={"email": "alice@example.com", "password": "correct-horse-battery"},
        errors={
            400: [invalid(("password", "Field required"))],
            401: [error("invalid_credentials", "Email or password is incorrect.")],
            429: [error("too_many_attempts", "Too many failed logins; try again in 60s.")],
        },
        public=True,
    ),
    Operation(
        method="get",
        path="/users/{user_id}",
        tag="accounts",
        operation_id="getUser",
        summary="Read your profile",
        ok=(200, "User", USER),
        errors={404: [USER_NOT_FOUND]},
    ),
    Operation(
        method="patch",
        path="/users/{user_id}",
        tag="accounts",
        operation_id="updateUser",
        summary="Change your profile",
        description="Set or clear your weight; it is read when a workout starts.",
        ok=(200, "User", {**USER, "weight_kg": 64.0}),
        body="ProfileBody",
        body_example={"weight_kg": 64},
        errors={
            400: [invalid(("weight_kg", "Input should be less than or equal to 400"))],
            404: [USER_NOT_FOUND],
        },
    ),
]

WORKOUT_OPERATIONS = [
    Operation(
        method="post",
        path="/workouts/start",
        tag="workouts",
        operation_id="startWorkout",
        summary="Start a workout",
        description="Start a session for yourself; one may be active at a time. Its calories "
        "use your profile weight at the start (70 kg if you have none).",
        ok=(201, "WorkoutSession", ACTIVE_SESSION),
        body="StartBody",
        body_example={"user_id": USER_ID, "workout_type": "running"},
        errors={
            400: [
                invalid(
                    ("workout_type", f"Unknown workout type; accepted: {', '.join(WORKOUT_TYPES)}.")
                )
            ],
            404: [USER_NOT_FOUND],
            409: [
                error(
                    "session_already_active",
                    f"You already have an active workout session ({SESSION_ID}); end it first.",
                    {"active_session_id": SESSION_ID},
                )
            ],
        },
    ),
    Operation(
        method="post",
        path="/workouts/{session_id}/end",
        tag="workouts",
        operation_id="endWorkout",
        summary="End a workout",
        description="End one of your sessions now (an empty body or `{}`) or at `end_time`. "
        "Its duration and calories are computed and it counts towards your goals. Ending it "
        "again returns the first result unchanged.",
        ok=(200, "WorkoutSession", ENDED_SESSION),
        body="EndBody",
        body_example={"end_time": "2026-11-23T19:39:00Z"},
        errors={
            400: [
                error(
                    "validation_failed",
                    "end_time is before the session's start.",
                    {"end_time": "Must be at or after 2026-11-23T19:09:00+00:00."},
                )
            ],
            404: [SESSION_NOT_FOUND],
        },
    ),
    Operation(
        method="get",
        path="/workouts/{session_id}",
        tag="workouts",
        operation_id="getWorkout",
        summary="Read one workout",
        ok=(200, "WorkoutSession", ENDED_SESSION),
        errors={404: [SESSION_NOT_FOUND]},
    ),
    Operation(
        method="get",
        path="/users/{user_id}/workouts",
        tag="workouts",
        operation_id="listWorkouts",
        summary="List your workouts",
        description="A page of your sessions, newest start first, with the total count.",
        ok=(200, "WorkoutPage", {"workouts": [ENDED_SESSION], "total": 2, "limit": 1, "offset": 0}),
        errors={
            400: [
                error(
                    "validation_failed",
                    "Bad paging parameters.",
                    {
                        "limit": "Must be a whole number from 1 to 100.",
                        "offset": "Must be a whole number from 0 to 1000000000.",
                    },
                )
            ]
        },
        query=("Limit", "Offset"),
    ),
    Operation(
        method="post",
        path="/users/{user_id}/workouts",
        tag="workouts",
        operation_id="logWorkout",
        summary="Log a past workout",
        description="Record a finished workout in one call, for any past date: its start and "
        "its `end_time` or `duration` (minutes), with distance, calories and sets if you have "
        "them. It counts in statistics and goals like a live one. It must last at least "
        f"{MIN_WORKOUT_MINUTES:g} minute(s). The same type at the same start is one workout: "
        "logging it again gets 409 with its id.",
        ok=(201, "WorkoutSession", LOGGED_SESSION),
        body="LogWorkoutBody",
        body_example={
            "workout_type": "strength",
            "start_time": "2026-10-02T07:15:00Z",
            "duration": 45,
            "sets": LOGGED_SESSION["sets"],
        },
        errors={
            400: [
                error(
                    "validation_failed",
                    "Give the workout's end_time or its duration in minutes, not both.",
                    {"end_time": "Give this or duration.", "duration": "Give this or end_time."},
                )
            ],
            404: [USER_NOT_FOUND],
            409: [
                error(
                    "workout_exists",
                    f"You already have this workout ({LOGGED_SESSION['session_id']}): same "
                    "type, same start.",
                    {"session_id": LOGGED_SESSION["session_id"]},
                )
            ],
        },
    ),
    Operation(
        method="post",
        path="/users/{user_id}/imports",
        tag="workouts",
        operation_id="importWorkouts",
        summary="Import workouts from a file",
        description="Upload a GPX, TCX or FIT file (each may be gzipped) or a CSV, as the "
        "multipart/form-data part `file`, up to 16 MiB (a zip archive: up to 1 GiB). Each "
        "activity in it becomes a finished "
        "workout that counts like a live one; the same activity imported again, from this file "
        "or another format, is counted as a duplicate, not stored twice. Activities or rows "
        "that can't be imported are listed with the reason while the rest imports. 201 when "
        "something was imported, 200 when all of it was there already. A zip archive (a Strava "
        "bulk export, or any zip of these files) is imported in the background: 202 with a job "
        "to follow at `status_url`. See docs/api.md for the CSV layouts and the sport mapping.",
        ok=(201, "ImportSummary", IMPORT_SUMMARY),
        upload=True,
        responses={
            "200": {"$ref": "#/components/responses/NothingNew"},
            "202": {"$ref": "#/components/responses/ImportQueued"},
        },
        errors={
            400: [
                error(
                    "unsupported_format",
                    "'notes.docx' is not a file this service imports; accepted: .csv, .fit, "
                    ".gpx, .tcx.",
                    {"file": "One of .csv, .fit, .gpx, .tcx, optionally gzipped (.gz)."},
                ),
                error(
                    "unreadable_file",
                    "'ride.fit' could not be read: it is not a complete FIT file.",
                    {"file": "it is not a complete FIT file"},
                ),
                error(
                    "unsafe_file",
                    "'run.gpx' was refused: it declares a DTD or entities.",
                    {"file": "it declares a DTD or entities"},
                ),
                error(
                    "nothing_imported",
                    "The file holds no workout that could be imported.",
                    {"plan.gpx": "its points have no times"},
                ),
            ],
        },
    ),
    Operation(
        method="get",
        path="/imports/{import_id}",
        tag="workouts",
        operation_id="getImport",
        summary="Follow an archive import",
        description="Where an archive's import is: its state, how many of its activity files "
        "were read, and what became of them. A job survives the replica that ran it: another "
        "one goes on from the last recorded batch, importing nothing twice.",
        ok=(200, "ImportJob", IMPORT_JOB),
        errors={404: [error("import_not_found", "No import 'x'.")]},
    ),
    Operation(
        method="get",
        path="/users/{user_id}/export",
        tag="workouts",
        operation_id="exportData",
        summary="Export all your data",
        description="A zip of your account, goals, workouts (JSON, and CSV in the import "
        "layout, so they import into another account) and strength sets (CSV), with a "
        "README. Text a spreadsheet would run as a formula is written with a leading `'`. "
        "One export an hour.",
        ok=(200, "zip", None),
        errors={
            429: [
                error("too_many_exports", "One export an hour: the next one is possible in 2841s.")
            ]
        },
    ),
    Operation(
        method="get",
        path="/users/{user_id}/statistics",
        tag="workouts",
        operation_id="getStatistics",
        summary="Your statistics",
        description="Totals over your ended sessions (not the discarded ones): minutes and kcal.",
        ok=(200, "Statistics", STATISTICS),
    ),
]

GATEWAY_OPERATIONS = [
    Operation(
        method="get",
        path="/status",
        tag="health",
        operation_id="getStatus",
        summary="Gateway and upstream status",
        description="Liveness; per service how many replicas are available and per replica "
        "its health, breaker state, in-flight and total requests and last error; and which "
        "Redis servers are in the ring.",
        ok=(200, "GatewayStatus", GATEWAY_STATUS),
        public=True,
        own=True,
    ),
    Operation(
        method="get",
        path="/status/ready",
        tag="health",
        operation_id="getReadiness",
        summary="Gateway readiness",
        description="200 once every service has a replica the gateway would send traffic to.",
        ok=(200, "Readiness", {"status": "ready", "service": "gateway"}),
        responses={"503": {"$ref": "#/components/responses/NotReady"}},
        public=True,
        own=True,
    ),
    Operation(
        method="get",
        path="/openapi.json",
        tag="docs",
        operation_id="getOpenApi",
        summary="This OpenAPI document",
        ok=(200, "OpenApiDocument", None),
        public=True,
        own=True,
    ),
    Operation(
        method="get",
        path="/docs",
        tag="docs",
        operation_id="getDocs",
        summary="The API documentation page",
        description="Plain HTML rendered from this document; it needs no internet.",
        ok=(200, "html", None),
        public=True,
        own=True,
    ),
]
