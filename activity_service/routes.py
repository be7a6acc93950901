"""HTTP routes of the activity service: parse, check who is asking, call the domain service."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, current_app, g, request

from activity_service import schemas
from activity_service.service import logged_workout
from fitness.auth import ensure_self, login_required
from fitness.errors import ValidationFailed
from fitness.web import idempotency_key, page_args, parse_body
from fitness.workouts import WORKOUT_TYPES

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


@bp.post("/users/<user_id>/workouts")
@login_required
def log_workout(user_id: str):
    ensure_self(user_id)
    body = parse_body(schemas.LogWorkoutBody)
    workout = logged_workout(body, _workouts().min_minutes)
    return _workouts().log(user_id, workout), 201


@bp.post("/users/<user_id>/imports")
@login_required
def import_workouts(user_id: str):
    ensure_self(user_id)
    upload, workout_type = _import_form()
    summary, status = current_app.extensions["imports"].import_file(
        user_id, upload.filename or "", upload.stream, workout_type
    )
    return summary, status


def _import_form():
    """Return the uploaded file and the optional workout type of a multipart import."""
    unknown = (set(request.form) - {"workout_type"}) | (set(request.files) - {"file"})
    fields = {name: "Unknown field." for name in sorted(unknown)}
    upload = request.files.get("file")
    if upload is None:
        fields["file"] = "Required: the file, as a multipart/form-data part named 'file'."
    workout_type = request.form.get("workout_type") or None
    if workout_type is not None and workout_type not in WORKOUT_TYPES:
        fields["workout_type"] = f"Unknown workout type; accepted: {', '.join(WORKOUT_TYPES)}."
    if fields:
        raise ValidationFailed("Send one file to import, and optionally its workout type.", fields)
    return upload, workout_type


@bp.get("/imports/<import_id>")
@login_required
def import_job(import_id: str):
    return current_app.extensions["imports"].jobs.get(import_id, g.user_id)


@bp.get("/users/<user_id>/export")
@login_required
def export(user_id: str):
    ensure_self(user_id)
    archive = current_app.extensions["exports"].export(user_id)
    name = f"fitness-export-{dt.date.today().isoformat()}.zip"
    return Response(
        archive,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


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
