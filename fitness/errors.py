"""Domain exceptions shared by every service; the edges turn them into HTTP and gRPC errors."""

from __future__ import annotations

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
    http_status = 400
    grpc_status = grpc.StatusCode.INVALID_ARGUMENT
    code = "validation_failed"


class AuthenticationFailed(DomainError):
    http_status = 401
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    code = "unauthenticated"


class PermissionDenied(DomainError):
    http_status = 403
    grpc_status = grpc.StatusCode.PERMISSION_DENIED
    code = "forbidden"


class NotFound(DomainError):
    http_status = 404
    grpc_status = grpc.StatusCode.NOT_FOUND
    code = "not_found"


class Conflict(DomainError):
    http_status = 409
    grpc_status = grpc.StatusCode.ALREADY_EXISTS
    code = "conflict"


class Unavailable(DomainError):
    http_status = 503
    grpc_status = grpc.StatusCode.UNAVAILABLE
    code = "unavailable"


_BY_GRPC_STATUS = {
    cls.grpc_status: cls
    for cls in (ValidationFailed, AuthenticationFailed, PermissionDenied, NotFound, Conflict)
}


def from_rpc_error(error: grpc.RpcError) -> DomainError:
    """Turn a peer's gRPC error back into the domain error it stands for."""
    cls = _BY_GRPC_STATUS.get(error.code(), Unavailable)
    return cls(error.details() or "upstream call failed")
