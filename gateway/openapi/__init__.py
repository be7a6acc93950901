"""The public API as an OpenAPI 3.1 document, generated from the services' own code.

Request bodies come from the services' pydantic models (``schemas``), so the document follows
what they accept; responses are described in ``schemas`` and ``operations`` and checked against
the running services by ``tests/test_openapi.py``. After changing the API run
``python -m gateway.openapi``: it rewrites ``gateway/openapi.json``, which the gateway serves
without importing this package or the services, and ``docs/postman_collection.json``
(``postman``). A test fails while either is stale.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

from gateway.openapi import examples
from gateway.openapi.operations import OPERATIONS, Operation
from gateway.openapi.schemas import BODY_MODELS, RESPONSE_SCHEMAS, body_schemas, ref

SPEC_PATH = Path(__file__).resolve().parents[1] / "openapi.json"
POSTMAN_PATH = Path(__file__).resolve().parents[2] / "docs" / "postman_collection.json"
BASE_URL = "http://127.0.0.1:8080"
API_VERSION = "1.0.0"

DESCRIPTION = """\
The public HTTP API of the Fitness Goal Tracker, served by the gateway: the one door clients use.
It forwards each operation to a healthy replica of the user or activity service.

JSON in, JSON out: send bodies as a JSON object. Times are ISO-8601 in UTC, **durations are in \
minutes**, weights in kg.

**Authentication**: every operation but register, login, the health checks and these documents \
needs `Authorization: Bearer <token>` with the token from `POST /users/login` (valid for \
`expires_in` seconds). A path or body about a user serves only that user (403 `forbidden`).

**Errors**: every 4xx and 5xx has one shape, `{"error": {"code", "message", "fields"}}`; \
`fields` is present only when individual fields are at fault. Besides the answers listed per \
operation: an unknown path gets 404 `not_found`, a method a path lacks 405 `method_not_allowed`.

**Idempotency**: every write (POST, PATCH, DELETE) accepts an `Idempotency-Key` header (1 to \
255 printable ASCII characters). The same key with the same request returns the first response \
again, with `Idempotent-Replayed: true`; while the first is still running it gets 409 \
`idempotency_in_progress`; with a different method, path or body 422 `idempotency_key_reused`. \
A keyed write is also safe for the gateway to retry on another replica.

**Request ids**: send `X-Request-ID` (at most 128 printable ASCII characters) to follow a request \
through the logs of every service; otherwise the gateway makes one. Every response carries it.

**Availability**: any forwarded operation may answer 503 `service_unavailable` with \
`Retry-After` when no replica of its service can take it, and a write that failed (502 \
`upstream_failed`) or timed out (504 `upstream_timeout`) on its way may or may not have been \
applied: retry it with an `Idempotency-Key`.

**Caching**: reads of your own data (`GET /users/{user_id}…`) may be answered from the \
gateway's cache (`X-Cache: HIT` or `MISS`); any write of yours through the gateway invalidates \
them, and others (a goal reached by a workout reported late) show within 30 seconds.
"""

TAGS = [
    ("accounts", "Register, log in, read and change your profile."),
    ("goals", "Fitness goals and the progress finished workouts make towards them."),
    ("workouts", "Workout sessions, their calories, and your statistics."),
    ("health", "The gateway's liveness, readiness and view of its upstream replicas."),
    ("docs", "This document and its human-readable page."),
]


PATH_PARAMETERS = {"user_id": "UserId", "goal_id": "GoalId", "session_id": "SessionId"}

PARAMETERS: dict[str, Any] = {
    "UserId": {
        "name": "user_id",
        "in": "path",
        "required": True,
        "description": "Your user id (from login); another user's gets 403.",
        "schema": {"type": "string"},
        "example": examples.USER_ID,
    },
    "GoalId": {
        "name": "goal_id",
        "in": "path",
        "required": True,
        "description": "One of your goals.",
        "schema": {"type": "string"},
        "example": examples.GOAL_ID,
    },
    "SessionId": {
        "name": "session_id",
        "in": "path",
        "required": True,
        "description": "One of your workout sessions; another user's gets 403.",
        "schema": {"type": "string"},
        "example": examples.SESSION_ID,
    },
    # The ranges of fitness.web.page_args.
    "Limit": {
        "name": "limit",
        "in": "query",
        "description": "Page size.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
    },
    "Offset": {
        "name": "offset",
        "in": "query",
        "description": "How many to skip.",
        "schema": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
    },
    "RequestId": {
        "name": "X-Request-ID",
        "in": "header",
        "description": "Correlation id for the logs; used if at most 128 printable ASCII "
        "characters, else the gateway makes a new one.",
        "schema": {"type": "string"},
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "description": "Makes the write safe to repeat: the same key with the same request "
        "gets the first response again.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
        "example": "3f1c2a9e-5b7d-4e60-9a1b-0c2d4e6f8a10",
    },
}

HEADERS: dict[str, Any] = {
    "X-Request-ID": {
        "description": "The request's correlation id: the one sent, or a new one.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with the "
        "same Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "X-Cache": {
        "description": "Whether the gateway answered from its cache.",
        "schema": {"type": "string", "enum": ["HIT", "MISS"]},
    },
}

ERROR_DESCRIPTIONS = {
    400: "The body, a parameter or a header is invalid; `fields` says which.",
    401: "Email or password is incorrect.",
    404: "Not found.",
    409: "Conflicts with the current state, or the same Idempotency-Key is still running.",
    429: "Too many failed logins for this account or from this address.",
}


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
            "responses": _shared_responses(),
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
    if op.public:
        item["security"] = []
    item["parameters"] = _parameters(op)
    if op.body:
        required = any(f.is_required() for f in BODY_MODELS[op.body].model_fields.values())
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
    if op.writes and op.forwarded:
        names.append("IdempotencyKey")
    return [ref("parameters", name) for name in names]


def _responses(op: Operation) -> dict[str, Any]:
    """Return every answer of ``op``: its own, then those of the edge and the gateway."""
    errors = {status: list(bodies) for status, bodies in op.errors.items()}
    shared = dict(op.responses)
    if op.forwarded:
        if op.body:
            errors.setdefault(400, []).append(examples.INVALID_JSON)
            shared["413"] = ref("responses", "PayloadTooLarge")
        if op.writes:
            errors.setdefault(400, []).append(examples.BAD_KEY)
            errors.setdefault(409, []).append(examples.KEY_IN_USE)
            shared["422"] = ref("responses", "IdempotencyKeyReused")
        if not op.public:
            shared.update({"401": ref("responses", "Unauthenticated")})
            shared.update({"403": ref("responses", "Forbidden")})
        for status, name in ((500, "InternalError"), (502, "BadGateway")):
            shared[str(status)] = ref("responses", name)
        shared["503"] = ref("responses", "ServiceUnavailable")
        shared["504"] = ref("responses", "GatewayTimeout")
    responses = {str(op.ok[0]): _ok_response(op), **shared}
    for status, bodies in errors.items():
        headers = ("Retry-After",) if status == 429 else ()
        responses[str(status)] = _error_response(ERROR_DESCRIPTIONS[status], bodies, headers)
    return dict(sorted(responses.items()))


def _ok_response(op: Operation) -> dict[str, Any]:
    status, schema, example = op.ok
    headers = ["X-Request-ID"]
    if op.writes and op.forwarded:
        headers.append("Idempotent-Replayed")
    if op.method == "get" and op.path.startswith("/users/{user_id}"):
        headers.append("X-Cache")  # the gateway caches reads of a path about a user
    if schema == "html":
        content = {"text/html": {"schema": {"type": "string"}}}
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


def _error_response(
    description: str, bodies: list[dict[str, Any]], headers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Return an answer in the Error shape, with one named example per body."""
    named: dict[str, Any] = {}
    for body in bodies:
        code = body["error"]["code"]
        name = code if code not in named else f"{code}_{sum(n.startswith(code) for n in named) + 1}"
        named[name] = {"summary": body["error"]["message"], "value": body}
    return {
        "description": description,
        "headers": {name: ref("headers", name) for name in ("X-Request-ID", *headers)},
        "content": {"application/json": {"schema": ref("schemas", "Error"), "examples": named}},
    }


def _shared_responses() -> dict[str, Any]:
    ex = examples
    responses = {
        "Unauthenticated": _error_response(
            "No token, or an invalid or expired one.", [ex.UNAUTHENTICATED, ex.TOKEN_EXPIRED]
        ),
        "Forbidden": _error_response("Another user's data.", [ex.FORBIDDEN]),
        "PayloadTooLarge": _error_response("The body is over 64 KiB.", [ex.TOO_LARGE]),
        "IdempotencyKeyReused": _error_response(
            "This Idempotency-Key came with a different request.", [ex.KEY_REUSED]
        ),
        "InternalError": _error_response("A bug on our side (logged).", [ex.INTERNAL]),
        "BadGateway": _error_response(
            "The service failed on a write that may have been applied.", [ex.UPSTREAM_FAILED]
        ),
        "ServiceUnavailable": _error_response(
            "No replica of the service can take the request now.",
            [ex.UNAVAILABLE],
            ("Retry-After",),
        ),
        "GatewayTimeout": _error_response(
            "The service did not answer a write in time; it may have been applied.",
            [ex.UPSTREAM_TIMEOUT],
        ),
    }
    responses["NotReady"] = {
        "description": "Some service has no replica the gateway would send traffic to.",
        "headers": {"X-Request-ID": ref("headers", "X-Request-ID")},
        "content": {
            "application/json": {
                "schema": ref("schemas", "Readiness"),
                "example": {"status": "unavailable", "service": "gateway"},
            }
        },
    }
    return responses
