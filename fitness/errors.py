"""Domain exceptions shared by every service; the edges turn them into HTTP and gRPC errors."""

from __future__ import annotations

import json
from typing import Any

import grpc


class DomainError(Exception):
    """Base of every expected failure: carries a machine code, a message and optional fields."""

    http_status = 400
    grpc_status = grpc.StatusCode.FAILED_PRECONDITION
    code = "bad_request"

    def __init__(self, message: str, fields: dict[str, Any] | None = None, code: str = ""):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code

    def response_headers(self) -> dict[str, str]:
        """Return extra HTTP headers for this error (e.g. ``Retry-After``)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """Return the one JSON error shape: ``{"error": {code, message, fields?}}``."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class ValidationFailed(DomainError):
    """Bad or unknown fields, bad paging: ``fields`` names each one."""

    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    code = "validation_failed"


class AuthenticationFailed(DomainError):
    """No token, or an invalid or expired one."""

    http_status = 401
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    code = "unauthenticated"


class PermissionDenied(DomainError):
    """Another user's data."""

    http_status = 403
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    code = "forbidden"


class NotFound(DomainError):
    """No such thing (or route)."""

    http_status = 404
    grpc_status = grpc.StatusCode.NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state."""

    http_status = 409
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    code = "conflict"


class Unavailable(DomainError):
    """A store or a service did not answer in time; retry shortly."""

    http_status = 503
    grpc_status = grpc.StatusCode.UNAVAILABLE
    code = "unavailable"


_BY_GRPC_STATUS = {
    cls.grpc_status: cls
    for cls in (ValidationFailed, AuthenticationFailed, PermissionDenied, NotFound, Conflict)
}


# Trailing metadata that carries a domain error's machine code and fields across gRPC.
_CODE_KEY = "fitness-error-code"
_FIELDS_KEY = "fitness-error-fields"


def error_metadata(error: DomainError) -> tuple[tuple[str, str], ...]:
    """Return the trailing metadata that lets the caller rebuild ``error`` exactly."""
    return ((_CODE_KEY, error.code), (_FIELDS_KEY, json.dumps(error.fields)))


def from_rpc_error(error: grpc.RpcError) -> DomainError:
    """Turn a peer's gRPC error back into the domain error it stands for (code and fields too)."""
    cls = _BY_GRPC_STATUS.get(error.code(), Unavailable)
    trailers = dict(getattr(error, "trailing_metadata", tuple)() or ())
    try:
        fields = json.loads(trailers.get(_FIELDS_KEY, "{}"))
    except ValueError:
        fields = {}
    return cls(
        error.details() or "upstream call failed",
        fields if isinstance(fields, dict) else {},
        code=trailers.get(_CODE_KEY, ""),
    )
