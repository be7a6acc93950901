"""HTTP routes of the user service: parse, check who is asking, call the domain services."""

from __future__ import annotations

from flask import Blueprint, current_app

from fitness.auth import ensure_self, login_required
from fitness.web import idempotency_key, parse_body
from user_service import schemas

bp = Blueprint("users", __name__)


def _accounts():
    return current_app.extensions["accounts"]


def _goals():
    return current_app.extensions["goals"]


@bp.post("/users/register")
def register():
    return _accounts().register(parse_body(schemas.RegisterBody), idempotency_key()), 201


@bp.post("/users/login")
def login():
    return _accounts().login(parse_body(schemas.LoginBody))


@bp.get("/users/<user_id>")
@login_required
def profile(user_id: str):
    ensure_self(user_id)
    return _accounts().profile(user_id)


@bp.patch("/users/<user_id>")
@login_required
def update_profile(user_id: str):
    ensure_self(user_id)
    return _accounts().update_profile(user_id, parse_body(schemas.ProfileBody))


@bp.get("/users/<user_id>/goals")
@login_required
def list_goals(user_id: str):
    ensure_self(user_id)
    return {"goals": _goals().list(user_id)}


@bp.get("/users/<user_id>/goals/<goal_id>")
@login_required
def get_goal(user_id: str, goal_id: str):
    ensure_self(user_id)
    return _goals().get(user_id, goal_id)
