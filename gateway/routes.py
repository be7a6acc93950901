"""The public routes: which service answers which path, and who may call it."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, g, request

from fitness import logs
from fitness.auth import bearer_token, verify_token
from fitness.errors import NotFound, PermissionDenied

bp = Blueprint("gateway", __name__)

PUBLIC_PATHS = {"/users/register", "/users/login"}
ROUTES: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^/users/(register|login)$"), "user_service"),
    (re.compile(r"^/users/(?P<user>[^/]+)/(workouts|statistics)$"), "activity_service"),
    (re.compile(r"^/users/(?P<user>[^/]+)(/goals(/[^/]+)?)?$"), "user_service"),
    (re.compile(r"^/workouts/start$"), "activity_service"),
    (re.compile(r"^/workouts/[^/]+(/end)?$"), "activity_service"),
]
_FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "Idempotency-Key")


def route_for(path: str) -> tuple[str, str | None]:
    """Return the service that answers ``path`` and the user id the path is about, if any."""
    for pattern, service in ROUTES:
        match = pattern.match(path)
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


@bp.route("/users/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE"])
@bp.route("/workouts/<path:rest>", methods=["GET", "POST", "PATCH", "DELETE"])
def forward(rest: str):
    service, path_user = route_for(request.path)
    _check_caller(request.path, path_user)
    headers = {
        name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers
    }
    headers[logs.CORRELATION_HEADER] = logs.get_correlation_id()
    headers["X-Forwarded-For"] = request.remote_addr or ""
    target = request.full_path if request.query_string else request.path
    upstream = current_app.extensions["proxy"].forward(
        service, request.method, target, request.get_data(), headers
    )
    return Response(upstream.body, status=upstream.status, headers=upstream.headers)


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
    return {"status": overall, "service": "gateway", "upstreams": services}
