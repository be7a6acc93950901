"""HTTP routes of the activity service: parse, check who is asking, call the domain service."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from activity_service import schemas
from fitness.auth import ensure_self, login_required
from fitness.web import idempotency_key, page_args, parse_body

bp = Blueprint("activity", __name__)


def _workouts():
    return current_app.extensions["workouts"]


@bp.post("/workouts/start")
@login_required
def start_workout():
    body = parse_body(schemas.StartBody)
    ensure_self(body.user_id)
    # The gateway may reroute a keyed write after a timeout: the key makes that safe here too.
    started = _workouts().start(body.user_id, body.workout_type, body.start_time, idempotency_key())
    return started, 201


@bp.post("/workouts/<session_id>/end")
@login_required
def end_workout(session_id: str):
    body = parse_body(schemas.EndBody)
    return _workouts().end(session_id, g.user_id, body.end_time)


@bp.get("/workouts/<session_id>")
@login_required
def get_workout(session_id: str):
    return _workouts().get(session_id, g.user_id)


@bp.get("/users/<user_id>/workouts")
@login_required
def list_workouts(user_id: str):
    ensure_self(user_id)
    limit, offset = page_args()
    return _workouts().list(user_id, limit, offset)


@bp.get("/users/<user_id>/statistics")
@login_required
def statistics(user_id: str):
    ensure_self(user_id)
    return _workouts().statistics(user_id)


@bp.get("/users/<user_id>/suggestions")
@login_required
def suggestions(user_id: str):
    ensure_self(user_id)
    return current_app.extensions["goals"].suggestions(user_id)
