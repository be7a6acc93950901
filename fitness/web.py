"""Flask plumbing every service shares: correlation ids, request logs, JSON errors, body parsing."""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from flask import Flask, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from fitness import auth, logs, mongo
from fitness.config import load_settings
from fitness.errors import DomainError, ValidationFailed
from fitness.imports import SPOOL_BYTES

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=pydantic.BaseModel)


def new_app(
    name: str, defaults: dict[str, Any], test_config: dict[str, Any] | None
) -> tuple[Flask, dict[str, Any]]:
    """Return a configured, logging Flask app for service ``name`` and its settings."""
    settings = load_settings(defaults, test_config)
    logs.configure_logging(name, settings["LOG_LEVEL"], settings["LOG_FILE"])
    app = Flask(name)
    app.json = _JsonProvider(app)
    app.config.from_mapping(settings)
    app.config["JWT_SECRET"] = auth.resolve_secret(settings)
    return app, settings


class _JsonProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies nested too deeply to parse with a 413, not a 500."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # json raises RecursionError, not ValueError, so Flask's get_json(silent=True)
            # would let it escape as a 500; a few kB of "[[[[…" must not do that.
            raise RequestEntityTooLarge("The JSON body is nested too deeply.") from None


def init_app(
    app: Flask, ready_check: Callable[[], None], status_view: Callable | None = None
) -> None:
    """Install request logging, the JSON error shape and the health routes on ``app``.

    ``status_view`` replaces the plain liveness answer of ``GET /status``.
    """
    app.config["MAX_CONTENT_LENGTH"] = app.config.get("MAX_BODY_BYTES", 64 * 1024)
    if isinstance(app.json, DefaultJSONProvider):  # fields in the order the code gives them
        app.json.sort_keys = False
    # "//" in a path is a 404 in the JSON shape, not an HTML redirect.
    app.url_map.merge_slashes = False
    app.before_request(_start_request)
    app.before_request(_read_streamed_body)
    app.after_request(_finish_request)
    app.teardown_request(_reset_request)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    _add_health_routes(app, ready_check, status_view)


def allow_uploads(app: Flask, path: re.Pattern[str], limit: int) -> None:
    """Let requests to paths matching ``path`` carry bodies of up to ``limit`` bytes.

    Every other route keeps MAX_BODY_BYTES: a large body is only read where a file is expected.
    """
    app.extensions.setdefault("upload_paths", []).append((path, limit))


def _start_request() -> None:
    for path, limit in current_app.extensions.get("upload_paths", ()):
        if path.fullmatch(request.path):
            request.max_content_length = limit
    g.started = time.perf_counter()
    g.correlation_id = logs.clean_correlation_id(request.headers.get(logs.CORRELATION_HEADER))
    g.correlation_token = logs.set_correlation_id(g.correlation_id)


def _read_streamed_body() -> None:
    """Read a body sent without Content-Length (chunked) now, refusing it whole if too large.

    werkzeug stops reading such a body at MAX_CONTENT_LENGTH without an error (its
    ``LimitedStream.readall``), so a larger one would be cut short and used as if complete.
    A large body (an upload) waits in a temporary file, not in memory.
    """
    if request.content_length is not None or "wsgi.input_terminated" not in request.environ:
        return
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    limit = request.max_content_length or current_app.config["MAX_CONTENT_LENGTH"]
    body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the input now)
    size = 0
    while size <= limit:
        chunk = request.environ["wsgi.input"].read(min(limit + 1 - size, 2**20))
        if not chunk:
            break
        body.write(chunk)
        size += len(chunk)
    if size > limit:
        body.close()
        raise RequestEntityTooLarge()
    # From here on the body reads as a plain one with a length.
    body.seek(0)
    request.environ["wsgi.input"] = body
    request.environ["CONTENT_LENGTH"] = str(size)


def _finish_request(response):
    response.headers[logs.CORRELATION_HEADER] = g.get("correlation_id", "")
    duration_ns = int((time.perf_counter() - g.get("started", time.perf_counter())) * 1e9)
    log.info(
        "%s %s %s",
        request.method,
        request.path,
        response.status_code,
        extra={
            "event.kind": "event",
            "event.category": "web",
            "event.duration": duration_ns,
            "http.request.method": request.method,
            "http.response.status_code": response.status_code,
            "url.path": request.path,
            "client.ip": request.remote_addr,
        },
    )
    return response


def _reset_request(_exc: BaseException | None) -> None:
    token = g.pop("correlation_token", None)
    if token is not None:
        logs.reset_correlation_id(token)


def error_response(status: int, code: str, message: str, fields: dict | None = None):
    """Return the one JSON error shape with ``status``."""
    return DomainError(message, fields, code=code).to_dict(), status


def _domain_error(error: DomainError):
    return error.to_dict(), error.http_status, error.response_headers()


def _http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


def _unexpected_error(error: Exception):
    if (outage := mongo.as_domain_error(error)) is not None:
        log.warning("store outage: %s", error)
        return _domain_error(outage)
    log.exception("unhandled error: %s", error)
    return error_response(500, "internal_error", "Something went wrong on our side; try again.")


def _add_health_routes(
    app: Flask, ready_check: Callable[[], None], status_view: Callable | None
) -> None:
    @app.get("/status")
    def status():
        if status_view is not None:
            return status_view()
        return {"status": "ok", "service": app.name}

    @app.get("/status/ready")
    def ready():
        try:
            ready_check()
        except Exception as exc:  # any failure of the store means "not ready", never a 500
            log.warning("readiness check failed: %s", exc)
            return {"status": "unavailable", "service": app.name}, 503
        return {"status": "ready", "service": app.name}


def json_body() -> Any:
    """Return the request body read as JSON whatever its Content-Type (None if it is not JSON).

    Every service reads bodies this way, and so does the gateway when it must see what a
    service will see (the e-mail address a login is counted against).
    """
    # An empty body means "no fields", so POST /workouts/{id}/end needs no body at all.
    return request.get_json(silent=True, force=True) if request.get_data() else {}


def parse_body(model: type[Model]) -> Model:
    """Validate the request's JSON object against ``model`` or raise ``ValidationFailed``."""
    payload = json_body()
    if not isinstance(payload, dict):
        raise ValidationFailed("The request body must be a JSON object.", code="invalid_json")
    return validate(model, payload)


def validate(model: type[Model], payload: Any) -> Model:
    """Validate ``payload`` against ``model``, naming every bad field in the error."""
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(
            "Some fields are missing or invalid.", fields=_field_errors(exc)
        ) from None


def _field_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in err["loc"]) or "body"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "Unknown field."
        fields.setdefault(name, message.removeprefix("Value error, "))
    return fields


def page_args(default_limit: int = 20, max_limit: int = 100) -> tuple[int, int]:
    """Return (limit, offset) from the query string, rejecting bad values with a 400."""
    fields = {}
    values = {}
    for name, default, low, high in (
        ("limit", default_limit, 1, max_limit),
        ("offset", 0, 0, 10**9),
    ):
        raw = request.args.get(name, str(default))
        if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
            fields[name] = f"Must be a whole number from {low} to {high}."
        else:
            values[name] = int(raw)
    if fields:
        raise ValidationFailed("Bad paging parameters.", fields=fields)
    return values["limit"], values["offset"]


def json_response(body: Any, status: int = 200):
    """Return ``body`` as JSON with ``status``."""
    return jsonify(body), status


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key() -> str | None:
    """Return the request's Idempotency-Key (1 to 255 printable ASCII characters), if it has one."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            {IDEMPOTENCY_HEADER: "invalid"},
        )
    return key
