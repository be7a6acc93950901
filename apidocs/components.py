"""Components the operations share: parameters, response headers and common answers."""

from __future__ import annotations

from typing import Any

from apidocs import examples
from apidocs.goals import SAGA_WAIT_SECONDS
from apidocs.schemas import ref

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
    "ImportId": {
        "name": "import_id",
        "in": "path",
        "required": True,
        "description": "An archive import of yours (from `status_url`); another user's gets 403.",
        "schema": {"type": "string"},
        "example": examples.IMPORT_JOB["import_id"],
    },
    "SagaId": {
        "name": "saga_id",
        "in": "path",
        "required": True,
        "description": "A saga you started (from `X-Saga-ID` or `status_url`).",
        "schema": {"type": "string"},
        "example": examples.SAGA_ID,
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
    "X-Saga-ID": {
        "description": "The id of the saga that ran the write (not on an Idempotent-Replayed "
        "answer).",
        "schema": {"type": "string"},
    },
    "Location": {
        "description": "Where to poll the saga: its `status_url`.",
        "schema": {"type": "string"},
    },
}


def error_response(
    description: str,
    bodies: list[dict[str, Any]],
    headers: tuple[str, ...] = (),
    schema: str = "Error",
) -> dict[str, Any]:
    """Return an answer in the error shape, with one named example per body."""
    named: dict[str, Any] = {}
    for body in bodies:
        code = body["error"]["code"] + ("_in_saga" if "saga" in body else "")
        name = code if code not in named else f"{code}_{sum(n.startswith(code) for n in named) + 1}"
        named[name] = {"summary": body["error"]["message"], "value": body}
    if any("saga" in body for body in bodies):
        headers = (*headers, "X-Saga-ID")
    return {
        "description": description,
        "headers": {name: ref("headers", name) for name in ("X-Request-ID", *headers)},
        "content": {"application/json": {"schema": ref("schemas", schema), "examples": named}},
    }


def shared_responses() -> dict[str, Any]:
    ex = examples
    responses = {
        "Unauthenticated": error_response(
            "No token, or an invalid or expired one.", [ex.UNAUTHENTICATED, ex.TOKEN_EXPIRED]
        ),
        "Forbidden": error_response("Another user's data.", [ex.FORBIDDEN]),
        "PayloadTooLarge": error_response("The body is over 64 KiB.", [ex.TOO_LARGE]),
        "UploadTooLarge": error_response(
            "The upload is over 1 GiB (FITNESS_MAX_UPLOAD_BYTES), or one file in it, not an "
            "archive, is over 16 MiB.",
            [ex.TOO_LARGE, ex.FILE_TOO_LARGE],
        ),
        "IdempotencyKeyReused": error_response(
            "This Idempotency-Key came with a different request.", [ex.KEY_REUSED]
        ),
        "InternalError": error_response("A bug on our side (logged).", [ex.INTERNAL]),
        "BadGateway": error_response(
            "The service failed on a write that may have been applied.", [ex.UPSTREAM_FAILED]
        ),
        "ServiceUnavailable": error_response(
            "No replica of the service can take the request now.",
            [ex.UNAVAILABLE],
            ("Retry-After",),
        ),
        "GatewayTimeout": error_response(
            "The service did not answer a write in time; it may have been applied.",
            [ex.UPSTREAM_TIMEOUT],
        ),
    }
    responses["SagaRunning"] = {
        "description": f"The saga was still going after {SAGA_WAIT_SECONDS:g} s; it goes on by "
        "itself. Poll `status_url` for the outcome.",
        "headers": {
            name: ref("headers", name)
            for name in ("X-Request-ID", "X-Saga-ID", "Location", "Idempotent-Replayed")
        },
        "content": {
            "application/json": {
                "schema": ref("schemas", "SagaAccepted"),
                "example": examples.SAGA_RUNNING,
            }
        },
    }
    responses["NothingNew"] = {
        "description": "Every activity in the file had been imported before: nothing changed.",
        "headers": {name: ref("headers", name) for name in ("X-Request-ID", "Idempotent-Replayed")},
        "content": {
            "application/json": {
                "schema": ref("schemas", "ImportSummary"),
                "example": {**examples.IMPORT_SUMMARY, "imported": 0, "workout_ids": []},
            }
        },
    }
    responses["ImportQueued"] = {
        "description": "An archive: its import runs in the background. Poll `status_url`; "
        "the same archive sent again answers 200 with the same job.",
        "headers": {name: ref("headers", name) for name in ("X-Request-ID", "Idempotent-Replayed")},
        "content": {
            "application/json": {
                "schema": ref("schemas", "ImportJob"),
                "example": {
                    **examples.IMPORT_JOB,
                    "state": "queued",
                    "progress": {"done": 0, "total": 412},
                    "imported": 0,
                    "duplicates": 0,
                    "rejected": 0,
                    "rejections": [],
                    "finished_at": None,
                },
            }
        },
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
