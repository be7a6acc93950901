"""The public API as an OpenAPI 3.1 document, generated from the services' own code.

Request bodies come from the services' pydantic models (``bodies``), so the document follows
what they accept; answers are described in ``schemas``, ``operations`` and ``goals`` (the goal
writes the gateway runs as sagas), with what they share in ``components``, and checked against
the running services and a gateway by ``tests/project/test_openapi.py``. After changing the API run
``python -m apidocs``: it rewrites ``gateway/openapi.json``, which the gateway serves
without importing this package or the services, and ``docs/postman_collection.json``
(``postman``). A test fails while either is stale.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

from apidocs import examples
from apidocs.bodies import BODY_MODELS, body_schemas
from apidocs.components import HEADERS, PARAMETERS, error_response, shared_responses
from apidocs.goals import GOAL_OPERATIONS, SAGA_WAIT_SECONDS
from apidocs.operations import (
    ACCOUNT_OPERATIONS,
    GATEWAY_OPERATIONS,
    WORKOUT_OPERATIONS,
    Operation,
)
from apidocs.schemas import RESPONSE_SCHEMAS, ref

SPEC_PATH = Path(__file__).resolve().parents[1] / "gateway" / "openapi.json"
POSTMAN_PATH = Path(__file__).resolve().parents[1] / "docs" / "postman_collection.json"
BASE_URL = "http://127.0.0.1:8080"
API_VERSION = "1.1.0"
OPERATIONS = [*ACCOUNT_OPERATIONS, *GOAL_OPERATIONS, *WORKOUT_OPERATIONS, *GATEWAY_OPERATIONS]

# "{wait}" is filled in below: the text has other braces, so no f-string or format().
DESCRIPTION = """\
The public HTTP API of the Fitness Goal Tracker, served by the gateway: the one door clients use.
It forwards most operations to a healthy replica of the user or activity service; goal writes it \
runs itself, as sagas.

JSON in, JSON out: send bodies as a JSON object. Times are ISO-8601 in UTC, **durations are in \
minutes**, weights in kg.

**Authentication**: every operation but register, login, the health checks and these documents \
needs `Authorization: Bearer <token>` with the token from `POST /users/login` (valid for \
`expires_in` seconds). A path or body about a user serves only that user (403 `forbidden`).

**Errors**: every 4xx and 5xx has one shape, `{"error": {"code", "message", "fields"}}`; \
`fields` is present only when individual fields are at fault; a goal write whose saga failed \
adds `saga` beside `error`. Besides the answers listed per operation: an unknown path gets 404 \
`not_found`, a method a path lacks 405 `method_not_allowed`.

**Idempotency**: every write (POST, PATCH, DELETE) accepts an `Idempotency-Key` header (1 to \
255 printable ASCII characters). The same key with the same request returns the first response \
again, with `Idempotent-Replayed: true`; while the first is still running it gets 409 \
`idempotency_in_progress`; with a different method, path or body 422 `idempotency_key_reused`. \
A keyed write is also safe for the gateway to retry on another replica.

**Request ids**: send `X-Request-ID` (at most 128 printable ASCII characters) to follow a request \
through the logs of every service; otherwise the gateway makes one. Every response carries it.

**Sagas**: creating, changing or cancelling a goal touches both services (the user service \
owns goals; the activity service keeps a copy to suggest workouts), so the gateway runs each as a \
saga: a durable log records every step before it is tried, a service that is briefly unavailable \
is retried, and when a step fails for good the steps already done are undone in reverse order \
(compensated). The gateway waits up to {wait} seconds for the outcome: the goal (201 or 200) \
when it completed; the refusing service's error with a `saga` object when it failed or was \
compensated, in which case nothing changed; 202 with a `status_url` when it is still going: it \
finishes by itself, even if a gateway restarts, and `GET /sagas/{saga_id}` tells how. Saga \
answers carry `X-Saga-ID`. One saga at a time may change a goal: another gets 409 `goal_busy`. \
If the saga log is unreachable the write gets 503 `unavailable` and nothing is started.

**Availability**: any forwarded operation may answer 503 `service_unavailable` with \
`Retry-After` when no replica of its service can take it, and a write that failed (502 \
`upstream_failed`) or timed out (504 `upstream_timeout`) on its way may or may not have been \
applied: retry it with an `Idempotency-Key`.

**Caching**: reads of your own data (`GET /users/{user_id}…`) may be answered from the \
gateway's cache (`X-Cache: HIT` or `MISS`); any write of yours through the gateway invalidates \
them (a goal write when its saga ends), and others (a goal reached by a workout reported \
late) show within 30 seconds.
""".replace("{wait}", f"{SAGA_WAIT_SECONDS:g}")

TAGS = [
    ("accounts", "Register, log in, read and change your profile."),
    (
        "goals",
        "Fitness goals, the progress finished workouts make towards them, and the workouts "
        "suggested to reach them.",
    ),
    ("sagas", "How a goal write, run as a saga, went: its state and each step."),
    ("workouts", "Workout sessions, their calories, and your statistics."),
    ("health", "The gateway's liveness, readiness and view of its upstream replicas."),
    ("docs", "This document and its human-readable page."),
]


PATH_PARAMETERS = {
    "user_id": "UserId",
    "goal_id": "GoalId",
    "session_id": "SessionId",
    "saga_id": "SagaId",
    "import_id": "ImportId",
}

ERROR_DESCRIPTIONS = {
    400: "The body, a parameter or a header is invalid; `fields` says which.",
    401: "Email or password is incorrect.",
    404: "Not found.",
    409: "Conflicts with the current state, or the same Idempotency-Key is still running.",
    429: "Too many of these for now (failed logins for this account or from this address; "
    "exports this hour); `Retry-After` says when to try again.",
    # Only the saga operations list a 503 of their own; forwarded ones share ServiceUnavailable.
    503: "A service stayed unavailable, so the saga undid its steps; or the saga log is "
    "unreachable, so none started.",
}
ERROR_HEADERS = {429: ("Retry-After",), 503: ("Retry-After",)}
SAGA_NOTE = " With `saga` when a saga step was refused."


def build_spec() -> dict[str, Any]:
    """Return the OpenAPI document of the public API, as plain JSON data."""
    spec = {
        "openapi": "3.1.0",
        "info": {
            "title": "Fitness Goal Tracker API",
            "version": API_VERSION,
            "description": DESCRIPTION,
        },
        "servers": [{"url": BASE_URL, "description": "The gateway started by `make up`."}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The `token` from `POST /users/login`.",
                }
            },
            "schemas": {**body_schemas(), **RESPONSE_SCHEMAS},
            "parameters": PARAMETERS,
            "headers": HEADERS,
            "responses": shared_responses(),
        },
    }
    # A fresh tree of plain lists and dicts: equal to what the committed file loads as.
    return json.loads(json.dumps(spec))


def to_json(document: dict[str, Any]) -> str:
    """Return ``document`` as the committed files hold it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return paths


def _operation(op: Operation) -> dict[str, Any]:
    item: dict[str, Any] = {"tags": [op.tag], "summary": op.summary, "operationId": op.operation_id}
    if op.description:
        item["description"] = op.description
    if op.saga:
        item["x-saga"] = op.saga  # the gateway answers it by running this saga
    if op.public:
        item["security"] = []
    item["parameters"] = _parameters(op)
    if op.upload:
        item["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": ref("schemas", "ImportUpload")}},
        }
    if op.body:
        fields = BODY_MODELS[op.body].model_fields.values()
        required = op.body_required or any(f.is_required() for f in fields)
        item["requestBody"] = {
            "required": required,
            "content": {
                "application/json": {"schema": ref("schemas", op.body), "example": op.body_example}
            },
        }
    item["responses"] = _responses(op)
    return item


def _parameters(op: Operation) -> list[dict[str, str]]:
    names = [PATH_PARAMETERS[name] for name in re.findall(r"{(\w+)}", op.path)]
    names += [*op.query, "RequestId"]
    if op.writes:
        names.append("IdempotencyKey")
    return [ref("parameters", name) for name in names]


def _responses(op: Operation) -> dict[str, Any]:
    """Return every answer of ``op``: its own, then those of the edge and the gateway."""
    errors = {status: list(bodies) for status, bodies in op.errors.items()}
    shared = dict(op.responses)
    if not op.own:  # the gateway's edge parses it: forwarded or run as a saga
        if op.body:
            errors.setdefault(400, []).append(examples.INVALID_JSON)
        if op.upload:
            shared["413"] = ref("responses", "UploadTooLarge")
        elif op.body:
            shared["413"] = ref("responses", "PayloadTooLarge")
        if op.writes:
            errors.setdefault(400, []).append(examples.BAD_KEY)
            errors.setdefault(409, []).append(examples.KEY_IN_USE)
            shared["422"] = ref("responses", "IdempotencyKeyReused")
        if not op.public:
            shared["403"] = ref("responses", "Forbidden")
    if not op.public:
        shared["401"] = ref("responses", "Unauthenticated")
    if op.forwarded or not op.public:
        shared["500"] = ref("responses", "InternalError")
    if op.forwarded:
        shared["502"] = ref("responses", "BadGateway")
        shared["503"] = ref("responses", "ServiceUnavailable")
        shared["504"] = ref("responses", "GatewayTimeout")
    if op.saga:
        shared["202"] = ref("responses", "SagaRunning")
    responses = {str(op.ok[0]): _ok_response(op), **shared}
    schema = "SagaError" if op.saga else "Error"
    for status, bodies in errors.items():
        description = ERROR_DESCRIPTIONS[status]
        if status != 503 and any("saga" in body for body in bodies):
            description += SAGA_NOTE
        headers = ERROR_HEADERS.get(status, ())
        responses[str(status)] = error_response(description, bodies, headers, schema)
    return dict(sorted(responses.items()))


def _ok_response(op: Operation) -> dict[str, Any]:
    status, schema, example = op.ok
    headers = ["X-Request-ID"]
    if op.saga:
        headers.append("X-Saga-ID")
    if op.writes:
        headers.append("Idempotent-Replayed")
    if op.method == "get" and op.path.startswith("/users/{user_id}"):
        headers.append("X-Cache")  # the gateway caches reads of a path about a user
    if schema == "html":
        content = {"text/html": {"schema": {"type": "string"}}}
    elif schema == "zip":
        content = {"application/zip": {"schema": {"contentMediaType": "application/zip"}}}
    else:
        media: dict[str, Any] = {"schema": ref("schemas", schema)}
        if example is not None:
            media["example"] = example
        content = {"application/json": media}
    return {
        "description": HTTPStatus(status).phrase,
        "headers": {name: ref("headers", name) for name in headers},
        "content": content,
    }
