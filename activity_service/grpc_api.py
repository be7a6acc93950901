"""gRPC servicer of the activity service: translate messages, call the same domain service."""

from __future__ import annotations

from activity_service import schemas
from activity_service.goals import GoalRegistry
from activity_service.groups import GroupSessions
from activity_service.service import WorkoutService
from fitness.errors import ValidationFailed
from fitness.v1 import activity_pb2, activity_pb2_grpc
from fitness.web import validate


def workout_message(view: dict) -> activity_pb2.WorkoutResponse:
    """Return a session view as its protobuf message."""
    return activity_pb2.WorkoutResponse(
        session_id=view["session_id"],
        user_id=view["user_id"],
        workout_type=view["workout_type"],
        start_time=view["start_time"],
        end_time=view["end_time"] or "",
        duration=view["duration"] or 0.0,
        calories_burned=view["calories_burned"] or 0.0,
        status=view["status"],
    )


class ActivityServicer(activity_pb2_grpc.ActivityServiceServicer):
    def __init__(self, workouts: WorkoutService, goals: GoalRegistry, groups: GroupSessions):
        self.workouts = workouts
        self.goals = goals
        self.groups = groups

    def StartWorkoutSession(self, request, context):
        body = validate(
            schemas.StartBody, {"user_id": request.user_id, "workout_type": request.workout_type}
        )
        return workout_message(self.workouts.start(body.user_id, body.workout_type))

    def EndWorkoutSession(self, request, context):
        if not request.user_id:
            raise ValidationFailed("user_id is required.", fields={"user_id": "Required."})
        body = validate(schemas.EndBody, {"end_time": request.end_time or None})
        view = self.workouts.end(request.session_id, request.user_id, body.end_time)
        return workout_message(view)

    def GetUserStatistics(self, request, context):
        return activity_pb2.StatisticsResponse(**self.workouts.statistics(request.user_id))

    def ApplyGoal(self, request, context):
        if not (request.saga_id and request.step and request.goal_id and request.user_id):
            raise ValidationFailed("saga_id, step, goal_id and user_id are required.")
        state = validate(
            schemas.GoalStateBody,
            {
                "goal_id": request.goal_id,
                "user_id": request.user_id,
                "goal_type": request.goal_type,
                "workout_type": request.workout_type or None,
                "target_value": request.target_value,
                "target_date": request.target_date,
                "status": request.status,
                "created_at": request.created_at,
            },
        )
        applied = self.goals.apply(
            state.model_dump(), request.saga_id, request.step, tuple(request.supersedes)
        )
        return activity_pb2.GoalStateResponse(applied=applied)

    def SaveGroupSession(self, request, context):
        if not (request.group_session_id and request.creator_id and request.participants):
            raise ValidationFailed("group_session_id, creator_id and participants are required.")
        session = {
            name: getattr(request, name)
            for name in (
                "group_session_id",
                "creator_id",
                "workout_type",
                "name",
                "started_at",
                "ended_at",
                "timeline_json",
                "exercises_json",
                "votes_json",
            )
        }
        session["participants"] = [
            {"user_id": p.user_id, "joined_at": p.joined_at, "left_at": p.left_at}
            for p in request.participants
        ]
        saved, ids = self.groups.save(session)
        return activity_pb2.GroupSessionSaved(saved=saved, workout_session_ids=ids)
