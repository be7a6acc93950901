"""Goal writes through the gateway run as sagas; ``GET /sagas/{id}`` shows how one went."""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from flask import Blueprint, Response, current_app, g, jsonify

from fitness import logs
from fitness.auth import ensure_self, login_required
from fitness.errors import Conflict, NotFound, Unavailable, ValidationFailed
from fitness.web import parse_body
from gateway.routes import run_once_per_key
from gateway.sagas import goals
from gateway.sagas.log import Saga
from gateway.sagas.schemas import GoalChange, NewGoal

bp = Blueprint("sagas", __name__)


@bp.post("/users/<user_id>/goals")
@login_required
def create_goal(user_id: str):
    ensure_self(user_id)
    body = parse_body(NewGoal).model_dump()
    return run_once_per_key(
        lambda: _run(goals.new_create_saga(user_id, body, logs.get_correlation_id()), 201)
    )


@bp.patch("/users/<user_id>/goals/<goal_id>")
@login_required
def change_goal(user_id: str, goal_id: str):
    ensure_self(user_id)
    change = parse_body(GoalChange).model_dump(exclude_none=True)
    if not change:
        raise ValidationFailed("Give target_value, target_date or both.")
    saga = goals.new_change_saga(user_id, goal_id, change, logs.get_correlation_id())
    return run_once_per_key(lambda: _run(saga, 200, lock_goal=goal_id))


@bp.delete("/users/<user_id>/goals/<goal_id>")
@login_required
def cancel_goal(user_id: str, goal_id: str):
    ensure_self(user_id)
    saga = goals.new_cancel_saga(user_id, goal_id, logs.get_correlation_id())
    return run_once_per_key(lambda: _run(saga, 200, lock_goal=goal_id))


@bp.get("/sagas/<saga_id>")
@login_required
def saga_status(saga_id: str):
    try:
        saga = _sagas().log.read(saga_id) if len(saga_id) <= 64 else None
    except redis.RedisError as exc:
        raise Unavailable("The saga log is unavailable right now; retry shortly.") from exc
    if saga is None or saga.user_id != g.user_id:
        raise NotFound(f"No saga {saga_id!r}.")
    return saga.view()


def _sagas():
    return current_app.extensions["coordinator"]


def _run(saga: Saga, done_status: int, lock_goal: str | None = None) -> Response:
    """Start the saga and answer with its outcome, or 202 while it is still going."""
    coordinator = _sagas()
    try:
        if lock_goal and not coordinator.log.lock_goal(lock_goal, saga.id, 600):
            raise GoalBusy(lock_goal)
        saga = coordinator.start(saga, current_app.config["SAGA_WAIT_SECONDS"])
    except redis.RedisError as exc:
        if lock_goal:
            with contextlib.suppress(redis.RedisError):
                coordinator.log.unlock_goal(lock_goal, saga.id)
        raise Unavailable("The saga log is unavailable; nothing was changed. Retry.") from exc
    return _outcome(saga, done_status)


def _outcome(saga: Saga, done_status: int) -> Response:
    status_url = f"/sagas/{saga.id}"
    if saga.state == "completed":
        response = jsonify(saga.data["goal"])
        response.status_code = done_status
    elif saga.state in ("compensated", "failed"):
        response = jsonify(_failure_body(saga, status_url))
        response.status_code = saga.error.get("status", 500) if saga.error else 500
        if response.status_code == 503:
            response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER_SECONDS"])
    else:
        body = {"saga_id": saga.id, "state": saga.state, "status_url": status_url}
        response = jsonify(body)
        response.status_code = 202
        response.headers["Location"] = status_url
    response.headers["X-Saga-ID"] = saga.id
    return response


def _failure_body(saga: Saga, status_url: str) -> dict[str, Any]:
    error = {k: v for k, v in (saga.error or {}).items() if k in ("code", "message", "fields")}
    if saga.state == "compensated":
        error["message"] = (
            error["message"].rstrip(".") + ". Every step already done was undone; nothing changed."
        )
    return {"error": error, "saga": {"saga_id": saga.id, "state": saga.state, "url": status_url}}


class GoalBusy(Conflict):
    """Another change of this goal is still running as a saga."""

    http_status = 409
    code = "goal_busy"

    def __init__(self, goal_id: str):
        super().__init__(f"Goal {goal_id!r} is being changed by another request; retry shortly.")
