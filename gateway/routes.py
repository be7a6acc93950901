"""The public routes: which service answers which path, and who may call it."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, request
from werkzeug.routing import PathConverter

from fitness import logs, web
from fitness.auth import bearer_token, verify_token
from fitness.config import redacted
from fitness.errors import NotFound, PermissionDenied
from gateway import uploads
from gateway.idempotency import Claim, StoredResponse
from gateway.proxy import UpstreamResponse

bp = Blueprint("gateway", __name__)


class AnyPath(PathConverter):
    """Werkzeug's ``path`` that also matches control characters such as a newline.

    The stock converter's ``.`` stops at ``\\n``: ``GET /users/u/goals/x%0A`` then matched only
    the saga routes (PATCH/DELETE) and got a 405 instead of the service's 404.
    """

    regex = r"[^/](?s:.)*?"


bp.record_once(lambda state: state.app.url_map.converters.update(anypath=AnyPath))

PUBLIC_PATHS = {"/users/register", "/users/login"}
ROUTES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^/users/(register|login)$"), "user_service"),
    (
        re.compile(r"^/users/(?P<user>[^/]+)/(workouts|statistics|suggestions|imports|export)$"),
        "activity_service",
    ),
    (re.compile(r"^/users/(?P<user>[^/]+)(/goals(/[^/]+)?)?$"), "user_service"),
    (re.compile(r"^/imports/[^/]+$"), "activity_service"),
    (re.compile(r"^/workouts/start$"), "activity_service"),
    (re.compile(r"^/workouts/[^/]+(/end)?$"), "activity_service"),
]
_FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "Idempotency-Key")


def route_for(path: str) -> tuple[str, str | None]:
    """Return the service that answers ``path`` and the user id the path is about, if any."""
    # "." and ".." may be resolved on the way (RFC 3986, 5.2.4: HTTP clients, proxies and
    # servers do): the service would answer another path than the one checked here.
    if any(part in (".", "..") for part in path.split("/")):
        raise NotFound(f"No route {path}.")
    for pattern, service in ROUTES:
        match = pattern.fullmatch(path)  # not match: "$" also matches before a final "\n"
        if match:
            return service, match.groupdict().get("user")
    raise NotFound(f"No route {path}.")


def _check_caller(path: str, path_user: str | None) -> None:
    """Verify the token at the edge; a path about a user is only for that user."""
    if path in PUBLIC_PATHS:
        return
    g.user_id = verify_token(bearer_token(), current_app.config["JWT_SECRET"])
    if path_user is not None and path_user != g.user_id:
        raise PermissionDenied("You can only act on your own data.")


@bp.route("/users/<anypath:rest>", methods=["GET", "POST", "PATCH", "DELETE"])
@bp.route("/workouts/<anypath:rest>", methods=["GET", "POST", "PATCH", "DELETE"])
@bp.route("/imports/<anypath:rest>", methods=["GET"])
def forward(rest: str):
    service, path_user = route_for(request.path)
    _check_caller(request.path, path_user)
    target = upstream_target()
    if request.method == "GET":
        return _read(service, target, path_user)
    return _write(service, target)


def upstream_target() -> str:
    """Return the request's path and query for the service, the path encoded again.

    The path arrives decoded: a "%3F" or "%23" in an id must stay part of the id, not start a
    query string or a fragment on the way to the service.
    """
    path = quote(request.path, safe="/:@!$&'()*+,;=")
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


def _read(service: str, target: str, path_user: str | None) -> Response:
    """Answer a read from the cache when a fresh copy is there, else from the service."""
    cache = current_app.extensions["cache"]
    if path_user is None or not cache.enabled:
        return _respond(_send(service, target))
    found = cache.lookup(path_user, target)
    if found.body is not None:
        return Response(
            found.body, 200, content_type="application/json", headers={"X-Cache": "HIT"}
        )
    upstream = _send(service, target)
    if upstream.status == 200 and _is_json(upstream):  # not an export's zip
        cache.store(path_user, target, found.version, upstream.body)
    response = _respond(upstream)
    response.headers["X-Cache"] = "MISS"
    return response


def _write(service: str, target: str) -> Response:
    """Send a write once per Idempotency-Key, limit failed logins, then drop stale reads."""
    login = request.path == "/users/login"
    if login:
        current_app.extensions["login_guard"].check(_login_account(), _client_address())
    response = run_once_per_key(lambda: _respond(_send(service, target)))
    if g.get("user_id"):
        current_app.extensions["cache"].invalidate(g.user_id)
    if login and response.status_code == 401:
        current_app.extensions["login_guard"].record_failure(_login_account(), _client_address())
    return response


def run_once_per_key(produce: Callable[[], Response]) -> Response:
    """Answer a write with ``produce()``, once per Idempotency-Key: repeats get the first answer."""
    claim = _claim_idempotency_key()
    if isinstance(claim, StoredResponse):
        return Response(
            claim.body,
            claim.status,
            content_type=claim.content_type,
            headers={**claim.headers, "Idempotent-Replayed": "true"},
        )
    records = current_app.extensions["idempotency"]
    try:
        response = produce()
    except Exception:
        if claim is not None:
            records.release(claim)
        raise
    if claim is not None:
        records.settle(
            claim,
            response.status_code,
            response.get_data(),
            response.content_type,
            dict(response.headers),
        )
    return response


def _claim_idempotency_key() -> Claim | StoredResponse | None:
    key = web.idempotency_key()
    if key is None:
        return None
    owner = g.get("user_id") or f"address:{_client_address()}"
    target = request.full_path if request.query_string else request.path
    # An upload is known by its hash: it is not read into memory.
    body = uploads.spooled_body().sha256 if uploads.is_upload() else request.get_data()
    return current_app.extensions["idempotency"].claim(owner, key, request.method, target, body)


def _send(service: str, target: str) -> UpstreamResponse:
    headers = {
        name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers
    }
    headers[logs.CORRELATION_HEADER] = logs.get_correlation_id()
    headers["X-Forwarded-For"] = _client_address()
    body = uploads.spooled_body() if uploads.is_upload() else request.get_data()
    return current_app.extensions["proxy"].forward(service, request.method, target, body, headers)


def _is_json(upstream: UpstreamResponse) -> bool:
    content_type = next((v for k, v in upstream.headers.items() if k.lower() == "content-type"), "")
    return content_type.startswith("application/json")


def _respond(upstream: UpstreamResponse) -> Response:
    return Response(upstream.body, status=upstream.status, headers=upstream.headers)


def _login_account() -> str | None:
    """Return the account a login tries, read exactly as the user service will read it.

    Any Content-Type (the service ignores it), and the address lower-cased as the service
    does: otherwise ``BOB@x`` and ``bob@x`` would be two accounts to the limiter and one to
    the service.
    """
    body = web.json_body()
    email = body.get("email") if isinstance(body, dict) else None
    return email.lower() if isinstance(email, str) and email.strip() else None


def _client_address() -> str:
    return request.remote_addr or "unknown"


def status():
    """Report every upstream replica: health, breaker state, in-flight requests, last error."""
    pools = current_app.extensions["pools"]
    services = {
        name: {
            "available": pool.available(),
            "replicas": [replica.status() for replica in pool.replicas],
        }
        for name, pool in pools.items()
    }
    overall = "ok" if all(s["available"] for s in services.values()) else "degraded"
    shards = current_app.extensions["shards"]
    live = set(shards.live_nodes())
    # A password written into a URL (rather than FITNESS_CACHE_REDIS_PASSWORD) is not shown.
    cache = [{"url": redacted(url), "in_ring": url in live} for url in sorted(shards.clients)]
    answer = {"status": overall, "service": "gateway", "upstreams": services, "cache_nodes": cache}
    if "live" in current_app.extensions:  # this worker's sockets: one worker answers
        answer["live"] = current_app.extensions["live"].hub.status()
    return answer
