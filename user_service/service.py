"""Accounts and goals: the user service's domain logic, free of HTTP and gRPC."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from fitness.auth import issue_token
from fitness.clock import as_utc, utcnow
from fitness.workouts import GOAL_ACTIVE, GOAL_CANCELLED
from user_service import schemas
from user_service.db import Database
from user_service.exceptions import (
    AccountTaken,
    GoalNotActive,
    GoalNotFound,
    InvalidCredentials,
    StepSuperseded,
    UserNotFound,
)
from user_service.models import AppliedStep, Goal, RecordedWorkout, User, new_id
from user_service.passwords import Passwords

log = logging.getLogger(__name__)


def user_view(user: User) -> dict[str, Any]:
    """Return the public profile of ``user``."""
    return {
        "user_id": user.id,
        "username": user.username,
        "email": user.email,
        "weight_kg": user.weight_kg,
        "created_at": as_utc(user.created_at).isoformat(),
    }


def goal_view(goal: Goal) -> dict[str, Any]:
    """Return ``goal`` in the API's shape (``fitness.goals.GoalView``), with its progress and
    whether it is achieved."""
    achieved_at = goal.achieved_at and as_utc(goal.achieved_at)
    return {
        "goal_id": goal.id,
        "user_id": goal.user_id,
        "goal_type": goal.goal_type,
        "workout_type": goal.workout_type,
        "target_value": goal.target_value,
        "target_date": goal.target_date.isoformat(),
        "current_progress": round(goal.current_progress, 2),
        "achieved": achieved_at is not None,
        "achieved_at": achieved_at.isoformat() if achieved_at else None,
        "status": goal.status,
        "created_at": as_utc(goal.created_at).isoformat(),
    }


@dataclass(frozen=True)
class StepKey:
    """The saga step a request belongs to (see ``AppliedStep``)."""

    saga_id: str
    step: str
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoredState:
    """A goal's earlier target, date and status, to put back when a saga compensates."""

    target_value: float
    target_date: dt.date
    status: str


@dataclass(frozen=True)
class FinishedWorkout:
    """A workout reported by the activity service once it has ended."""

    session_id: str
    user_id: str
    workout_type: str
    duration_minutes: float
    calories_burned: float
    ended_at: dt.datetime

    def amount_for(self, goal_type: str) -> float:
        """Return how much this workout adds to a goal of ``goal_type``."""
        return {
            "workout_count": 1.0,
            "active_minutes": self.duration_minutes,
            "calories_burned": self.calories_burned,
        }[goal_type]


class AccountService:
    """Registration, login and profiles."""

    def __init__(
        self, db: Database, token_secret: str, token_ttl: int, passwords: Passwords | None = None
    ):
        self.db = db
        self.token_secret = token_secret
        self.token_ttl = token_ttl
        self.passwords = passwords or Passwords()

    def register(
        self, body: schemas.RegisterBody, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Create an account; raise ``AccountTaken`` if the username or email is in use.

        With an idempotency key the account id derives from it (and the email), so a repeated
        request — the gateway retrying on another replica after a timeout — finds the account
        the first one created and answers as it did, instead of ``AccountTaken``.
        """
        user_id = _keyed_user_id(body.email, idempotency_key) if idempotency_key else None
        if user_id and (replayed := self._registered_as(user_id, body)):
            return replayed
        password_hash = self.passwords.hash(body.password)
        try:
            with self.db.writing() as session:
                self._ensure_free(session, body.username, body.email)
                user = User(
                    **({"id": user_id} if user_id else {}),
                    username=body.username,
                    email=body.email,
                    password_hash=password_hash,
                    weight_kg=body.weight_kg,
                )
                session.add(user)
                session.flush()
                view = user_view(user)
        except IntegrityError:
            if user_id and (replayed := self._registered_as(user_id, body)):
                return replayed  # the first of two concurrent deliveries won
            raise AccountTaken("That username or email is already registered.") from None
        log.info("user registered", extra={"user.id": view["user_id"]})
        return view

    def _registered_as(self, user_id: str, body: schemas.RegisterBody) -> dict[str, Any] | None:
        """The view of the account a keyed registration already created, if this is a repeat."""
        with self.db.reading() as session:
            user = session.get(User, user_id)
            if user is None or (user.username, user.email) != (body.username, body.email):
                return None
            return user_view(user)

    @staticmethod
    def _ensure_free(session, username: str, email: str) -> None:
        taken = session.execute(
            select(User.username, User.email).where(
                or_(User.username == username, User.email == email)
            )
        ).first()
        if taken is None:
            return
        field = "username" if taken.username == username else "email"
        raise AccountTaken(
            f"That {field} is already registered.", fields={field: "Already registered."}
        )

    def login(self, body: schemas.LoginBody) -> dict[str, Any]:
        """Return a token for the right email and password, else raise ``InvalidCredentials``."""
        with self.db.reading() as session:
            user = session.scalars(select(User).where(User.email == body.email)).first()
        stored = user.password_hash if user is not None else None
        matches, new_hash = self.passwords.verify(stored, body.password)
        if not matches or user is None:
            raise InvalidCredentials()
        if new_hash:
            self._replace_hash(user.id, user.password_hash, new_hash)
        token = issue_token(user.id, self.token_secret, self.token_ttl)
        return {"token": token, "user_id": user.id, "expires_in": self.token_ttl}

    def _replace_hash(self, user_id: str, old_hash: str, new_hash: str) -> None:
        """Store a hash made with today's parameters, unless the password changed meanwhile."""
        with self.db.writing() as session:
            user = session.get(User, user_id)
            if user is not None and user.password_hash == old_hash:
                user.password_hash = new_hash
        log.info("password hash upgraded", extra={"user.id": user_id})

    def profile(self, user_id: str) -> dict[str, Any]:
        """Return the profile of ``user_id``."""
        with self.db.reading() as session:
            return user_view(self._user(session, user_id))

    def update_profile(self, user_id: str, body: schemas.ProfileBody) -> dict[str, Any]:
        """Change the profile fields that were sent."""
        with self.db.writing() as session:
            user = self._user(session, user_id)
            if "weight_kg" in body.model_fields_set:
                user.weight_kg = body.weight_kg
            session.flush()
            return user_view(user)

    @staticmethod
    def _user(session, user_id: str) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user


def _earlier_result(step: StepKey, result: dict[str, Any]) -> dict[str, Any]:
    if "superseded_by" in result:
        raise StepSuperseded(step.step, result["superseded_by"])
    return result


def _record_steps(session, step: StepKey, view: dict[str, Any]) -> None:
    """Record ``step`` as applied, and the steps it undoes, so late repeats change nothing."""
    session.add(AppliedStep(saga_id=step.saga_id, step=step.step, result=json.dumps(view)))
    undone = json.dumps({"superseded_by": step.step})
    for name in step.supersedes:
        if session.get(AppliedStep, (step.saga_id, name)) is None:
            session.add(AppliedStep(saga_id=step.saga_id, step=name, result=undone))


class GoalService:
    """Goals and the progress finished workouts make towards them."""

    def __init__(self, db: Database):
        self.db = db

    def create(
        self,
        user_id: str,
        body: schemas.GoalBody,
        request_id: str | None = None,
        step: StepKey | None = None,
        goal_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a goal; with ``request_id``, a repeated request returns the first goal.

        ``goal_id`` lets a saga name the goal before creating it, so it can undo the creation
        even when the answer was lost.
        """

        def apply(session) -> dict[str, Any]:
            if session.get(User, user_id) is None:
                raise UserNotFound(user_id)
            if request_id:
                existing = session.scalars(
                    select(Goal).where(Goal.request_id == request_id, Goal.user_id == user_id)
                )
                if (goal := existing.first()) is not None:
                    return goal_view(goal)
            goal = Goal(
                id=goal_id or new_id(),
                user_id=user_id,
                goal_type=body.goal_type,
                workout_type=body.workout_type,
                target_value=float(body.target_value),
                target_date=body.target_date,
                request_id=request_id or None,
            )
            session.add(goal)
            session.flush()
            return goal_view(goal)

        return self._apply_once(step, apply)

    def list(self, user_id: str) -> list[dict[str, Any]]:
        """Return every goal of ``user_id``, newest first."""
        with self.db.reading() as session:
            if session.get(User, user_id) is None:
                raise UserNotFound(user_id)
            goals = session.scalars(
                select(Goal).where(Goal.user_id == user_id).order_by(Goal.created_at.desc())
            )
            return [goal_view(goal) for goal in goals]

    def get(self, user_id: str, goal_id: str) -> dict[str, Any]:
        """Return one goal of ``user_id``."""
        with self.db.reading() as session:
            return goal_view(self._goal(session, user_id, goal_id))

    def change(
        self,
        user_id: str,
        goal_id: str,
        body: schemas.GoalChangeBody,
        step: StepKey | None = None,
    ) -> dict[str, Any]:
        """Change a goal's target value or date; achievement follows the new target."""

        def apply(session) -> dict[str, Any]:
            goal = self._goal(session, user_id, goal_id)
            if goal.status != GOAL_ACTIVE:
                raise GoalNotActive(goal_id)
            if body.target_value is not None:
                goal.target_value = float(body.target_value)
            if body.target_date is not None:
                goal.target_date = body.target_date
            _settle_achievement(goal, utcnow())
            session.flush()
            return goal_view(goal)

        return self._apply_once(step, apply)

    def cancel(self, user_id: str, goal_id: str, step: StepKey | None = None) -> dict[str, Any]:
        """Cancel a goal (idempotent): it stays listed but stops counting progress."""

        def apply(session) -> dict[str, Any]:
            goal = self._goal(session, user_id, goal_id)
            goal.status = GOAL_CANCELLED
            session.flush()
            return goal_view(goal)

        return self._apply_once(step, apply)

    def delete(self, user_id: str, goal_id: str, step: StepKey | None = None) -> dict[str, Any]:
        """Delete a goal a saga created and then undid; deleting a missing goal is fine."""

        def apply(session) -> dict[str, Any]:
            goal = session.get(Goal, goal_id)
            if goal is None or goal.user_id != user_id:
                return {"goal_id": goal_id, "user_id": user_id, "deleted": True}
            view = goal_view(goal)
            session.delete(goal)
            return {**view, "deleted": True}

        return self._apply_once(step, apply)

    def restore(
        self, user_id: str, goal_id: str, state: RestoredState, step: StepKey | None = None
    ) -> dict[str, Any]:
        """Put a goal back to an earlier target, date and status (undoing a saga's change)."""

        def apply(session) -> dict[str, Any]:
            goal = self._goal(session, user_id, goal_id)
            goal.target_value = state.target_value
            goal.target_date = state.target_date
            goal.status = state.status
            _settle_achievement(goal, utcnow())
            session.flush()
            return goal_view(goal)

        return self._apply_once(step, apply)

    def _apply_once(
        self, step: StepKey | None, apply: Callable[[Any], dict[str, Any]]
    ) -> dict[str, Any]:
        """Run ``apply`` in one write transaction, at most once per saga step."""
        with self.db.writing() as session:
            if step is not None:
                done = session.get(AppliedStep, (step.saga_id, step.step))
                if done is not None:
                    return _earlier_result(step, json.loads(done.result))
            view = apply(session)
            if step is not None:
                _record_steps(session, step, view)
            return view

    def record_workout(
        self, workout: FinishedWorkout
    ) -> tuple[bool, builtins.list[dict[str, Any]]]:
        """Count ``workout`` towards every matching active goal, once per session.

        Return whether it was counted now (False if it already had been) and the goals it
        made achieved. A goal counts workouts that end between its creation and the end of
        its target date, of its workout type if it has one.
        """
        return self.record_workouts([workout])[0]

    def record_workouts(
        self, workouts: builtins.list[FinishedWorkout]
    ) -> builtins.list[tuple[bool, builtins.list[dict[str, Any]]]]:
        """``record_workout`` for many workouts, in order, in one transaction (an import's
        batch: one commit instead of one per workout)."""
        results: builtins.list[tuple[bool, builtins.list[Goal]]] = []
        seen: set[str] = set()  # a session sent twice in one call counts once
        with self.db.writing() as session:
            for workout in workouts:
                again = workout.session_id in seen
                seen.add(workout.session_id)
                results.append((False, []) if again else self._record(session, workout))
            session.flush()
            views = [
                (counted, [goal_view(goal) for goal in achieved]) for counted, achieved in results
            ]
        for (_counted, achieved), workout in zip(views, workouts, strict=True):
            for view in achieved:
                log.info(
                    "goal achieved", extra={"user.id": workout.user_id, "goal.id": view["goal_id"]}
                )
        return views

    def _record(self, session, workout: FinishedWorkout) -> tuple[bool, builtins.list[Goal]]:
        """Count one workout in ``session``; return whether it counted now and what it achieved."""
        if session.get(RecordedWorkout, workout.session_id) is not None:
            return False, []
        session.add(RecordedWorkout(session_id=workout.session_id, user_id=workout.user_id))
        achieved = []
        for goal in self._matching_goals(session, workout):
            goal.current_progress += workout.amount_for(goal.goal_type)
            was_achieved = goal.achieved_at is not None
            _settle_achievement(goal, workout.ended_at)
            if goal.achieved_at is not None and not was_achieved:
                achieved.append(goal)
        return True, achieved

    @staticmethod
    def _matching_goals(session, workout: FinishedWorkout) -> builtins.list[Goal]:
        goals = session.scalars(
            select(Goal).where(Goal.user_id == workout.user_id, Goal.status == GOAL_ACTIVE)
        )
        return [
            goal
            for goal in goals
            if goal.workout_type in (None, workout.workout_type)
            and as_utc(goal.created_at) <= workout.ended_at
            and workout.ended_at.date() <= goal.target_date
        ]

    @staticmethod
    def _goal(session, user_id: str, goal_id: str) -> Goal:
        goal = session.get(Goal, goal_id)
        if goal is None or goal.user_id != user_id:
            raise GoalNotFound(goal_id)
        return goal


def _settle_achievement(goal: Goal, moment: dt.datetime) -> None:
    """Mark ``goal`` achieved at ``moment`` once progress reaches the target, or un-mark it."""
    if goal.current_progress >= goal.target_value:
        goal.achieved_at = goal.achieved_at or moment
    else:
        goal.achieved_at = None


_KEYED_ACCOUNTS = uuid.UUID("6f1d3c2a-9a57-4b8e-8f0e-2f7c1a6d4b10")


def _keyed_user_id(email: str, idempotency_key: str) -> str:
    """The id a registration with this key and email gets, the same on every replica."""
    return str(uuid.uuid5(_KEYED_ACCOUNTS, f"{email}\n{idempotency_key}"))
