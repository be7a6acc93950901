"""gRPC servicer of the user service: translate messages, call the same domain services."""

from __future__ import annotations

import datetime as dt

from fitness.errors import ValidationFailed
from fitness.goals import MAX_WORKOUTS_PER_REPORT, goal_message
from fitness.v1 import user_pb2, user_pb2_grpc
from fitness.web import validate
from user_service import schemas
from user_service.events import GoalEvents
from user_service.service import (
    AccountService,
    FinishedWorkout,
    GoalService,
    RestoredState,
    StepKey,
)


def step_key(request) -> StepKey | None:
    """Return the saga step a request carries, or None outside sagas."""
    if not request.HasField("step") or not request.step.saga_id:
        return None
    if not request.step.step:
        raise ValidationFailed("step.step is required with step.saga_id.")
    return StepKey(request.step.saga_id, request.step.step, tuple(request.step.supersedes))


def user_message(view: dict) -> user_pb2.UserResponse:
    """Return a profile view as its protobuf message."""
    return user_pb2.UserResponse(
        user_id=view["user_id"],
        username=view["username"],
        email=view["email"],
        weight_kg=view["weight_kg"] or 0.0,
        created_at=view["created_at"],
    )


def _parse_time(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("ended_at must be an ISO-8601 timestamp.") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, accounts: AccountService, goals: GoalService, events: GoalEvents):
        self.accounts = accounts
        self.goals = goals
        self.events = events

    def RegisterUser(self, request, context):
        body = {"username": request.username, "email": request.email}
        body["password"] = request.password
        if request.weight_kg:
            body["weight_kg"] = request.weight_kg
        return user_message(self.accounts.register(validate(schemas.RegisterBody, body)))

    def GetUser(self, request, context):
        return user_message(self.accounts.profile(request.user_id))

    def GetUserGoal(self, request, context):
        return goal_message(self.goals.get(request.user_id, request.goal_id))

    def ListUserGoals(self, request, context):
        goals = [goal_message(view) for view in self.goals.list(request.user_id)]
        return user_pb2.ListGoalsResponse(goals=goals)

    def CreateGoal(self, request, context):
        body = {
            "goal_type": request.goal_type,
            "target_value": request.target_value,
            "target_date": request.target_date,
            "workout_type": request.workout_type or None,
        }
        goal = validate(schemas.GoalBody, body)
        if len(request.goal_id) > 36:
            raise ValidationFailed("goal_id is at most 36 characters.", {"goal_id": "Too long."})
        created = self.goals.create(
            request.user_id,
            goal,
            request.request_id or None,
            step_key(request),
            request.goal_id or None,
        )
        return goal_message(created)

    def UpdateGoal(self, request, context):
        body = {
            "target_value": request.target_value or None,
            "target_date": request.target_date or None,
        }
        change = validate(schemas.GoalChangeBody, body)
        changed = self.goals.change(request.user_id, request.goal_id, change, step_key(request))
        return goal_message(changed)

    def CancelGoal(self, request, context):
        cancelled = self.goals.cancel(request.user_id, request.goal_id, step_key(request))
        return goal_message(cancelled)

    def DeleteGoal(self, request, context):
        deleted = self.goals.delete(request.user_id, request.goal_id, step_key(request))
        return user_pb2.GoalResponse(goal_id=deleted["goal_id"], user_id=deleted["user_id"])

    def RestoreGoal(self, request, context):
        state = validate(
            schemas.RestoredGoalBody,
            {
                "target_value": request.target_value,
                "target_date": request.target_date,
                "status": request.status,
            },
        )
        restored = self.goals.restore(
            request.user_id,
            request.goal_id,
            RestoredState(state.target_value, state.target_date, state.status),
            step_key(request),
        )
        return goal_message(restored)

    def RecordWorkout(self, request, context):
        return self._recorded([_finished_workout(request)])[0]

    def RecordWorkouts(self, request, context):
        if len(request.workouts) > MAX_WORKOUTS_PER_REPORT:
            raise ValidationFailed(f"Send at most {MAX_WORKOUTS_PER_REPORT} workouts at once.")
        workouts = [_finished_workout(one) for one in request.workouts]
        return user_pb2.RecordWorkoutsResponse(results=self._recorded(workouts))

    def _recorded(self, workouts: list[FinishedWorkout]) -> list:
        """Count ``workouts``, announce the goals they achieved; return one answer each."""
        answers = []
        for counted, achieved in self.goals.record_workouts(workouts):
            for view in achieved:
                self.events.goal_achieved(view)
            answers.append(
                user_pb2.RecordWorkoutResponse(
                    counted=counted, achieved_goals=[goal_message(view) for view in achieved]
                )
            )
        return answers


def _finished_workout(request) -> FinishedWorkout:
    """Return a reported workout, refusing one without its session or user."""
    if not request.session_id or not request.user_id:
        raise ValidationFailed("session_id and user_id are required.")
    return FinishedWorkout(
        session_id=request.session_id,
        user_id=request.user_id,
        workout_type=request.workout_type,
        duration_minutes=request.duration_minutes,
        calories_burned=request.calories_burned,
        ended_at=_parse_time(request.ended_at),
    )
