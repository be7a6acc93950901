"""The gRPC contracts, served by every replica with the standard health service."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fitness.v1 import activity_pb2, activity_pb2_grpc, user_pb2, user_pb2_grpc
from tests.support.stack import grpc_channel

TIMEOUT = 5


@pytest.fixture(scope="module")
def channels(stack):
    """Channels to every replica as the gateway, as the saga coordinator calls them."""
    opened = {r.name: grpc_channel(stack, r) for r in stack.replicas if r.grpc_port}
    yield opened
    for channel in opened.values():
        channel.close()


def _user_stub(stack, channels, index=0):
    name = [r.name for r in stack.replicas if r.service == "user_service"][index]
    return user_pb2_grpc.UserServiceStub(channels[name])


def _as_activity_service(stack) -> user_pb2_grpc.UserServiceStub:
    """A user-service stub with the activity service's certificate (RecordWorkout is its)."""
    replica = stack.replicas_of("user_service")[0]
    return user_pb2_grpc.UserServiceStub(grpc_channel(stack, replica, "activity_service"))


def _register(stub) -> user_pb2.UserResponse:
    name = "g" + uuid.uuid4().hex[:10]
    return stub.RegisterUser(
        user_pb2.UserRequest(username=name, email=f"{name}@example.com", password="long-enough"),
        timeout=TIMEOUT,
    )


def _goal(stub, user, goal_type: str, target: float) -> user_pb2.GoalResponse:
    request = user_pb2.CreateGoalRequest(
        user_id=user.user_id, goal_type=goal_type, target_value=target, target_date="2099-01-01"
    )
    return stub.CreateGoal(request, timeout=TIMEOUT)


def _workout(user, session_id: str, ended_at: dt.datetime) -> user_pb2.RecordWorkoutRequest:
    """A 30-minute run of 300 kcal, as the activity service reports one."""
    return user_pb2.RecordWorkoutRequest(
        session_id=session_id,
        user_id=user.user_id,
        workout_type="running",
        duration_minutes=30,
        calories_burned=300,
        ended_at=ended_at.isoformat(),
    )


def test_it_reports_every_replica_serving(channels):
    for channel in channels.values():
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_it_registers_and_reads_a_goal_over_grpc(stack, channels):
    stub = _user_stub(stack, channels)
    user = _register(stub)
    day = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    request = user_pb2.CreateGoalRequest(
        user_id=user.user_id,
        goal_type="calories_burned",
        target_value=500,
        target_date=day,
        request_id="req-" + user.user_id,
    )
    first = stub.CreateGoal(request, timeout=TIMEOUT)
    repeated = _user_stub(stack, channels, 1).CreateGoal(request, timeout=TIMEOUT)
    assert repeated.goal_id == first.goal_id
    goals = stub.ListUserGoals(user_pb2.ListGoalsRequest(user_id=user.user_id), timeout=TIMEOUT)
    assert [g.goal_id for g in goals.goals] == [first.goal_id]
    fetched = stub.GetUserGoal(
        user_pb2.GoalRequest(user_id=user.user_id, goal_id=first.goal_id), timeout=TIMEOUT
    )
    assert (fetched.goal_type, fetched.target_value, fetched.target_date) == (
        "calories_burned",
        500,
        day,
    )


def test_it_counts_a_repeated_workout_delivery_once(stack, channels):
    stub = _user_stub(stack, channels)
    user = _register(stub)
    goal = _goal(stub, user, "active_minutes", 50)
    workout = _workout(user, "s-" + user.user_id, dt.datetime.now(dt.UTC))
    activity = _as_activity_service(stack)
    assert activity.RecordWorkout(workout, timeout=TIMEOUT).counted is True
    assert activity.RecordWorkout(workout, timeout=TIMEOUT).counted is False
    fetched = stub.GetUserGoal(
        user_pb2.GoalRequest(user_id=user.user_id, goal_id=goal.goal_id), timeout=TIMEOUT
    )
    assert fetched.current_progress == 30


def test_it_counts_many_workouts_in_one_call_each_once(stack, channels):
    stub = _user_stub(stack, channels)
    user = _register(stub)
    goal = _goal(stub, user, "workout_count", 3)
    now = dt.datetime.now(dt.UTC)
    workouts = [
        _workout(user, f"s{n}-{user.user_id}", now + dt.timedelta(seconds=n)) for n in range(3)
    ]
    activity = _as_activity_service(stack)
    first = activity.RecordWorkouts(
        user_pb2.RecordWorkoutsRequest(workouts=[*workouts[:2], workouts[0]]), timeout=TIMEOUT
    )
    assert [r.counted for r in first.results] == [True, True, False]
    second = activity.RecordWorkouts(
        user_pb2.RecordWorkoutsRequest(workouts=workouts), timeout=TIMEOUT
    )
    assert [r.counted for r in second.results] == [False, False, True]
    assert [g.goal_id for g in second.results[2].achieved_goals] == [goal.goal_id]
    fetched = stub.GetUserGoal(
        user_pb2.GoalRequest(user_id=user.user_id, goal_id=goal.goal_id), timeout=TIMEOUT
    )
    assert (fetched.current_progress, fetched.achieved) == (3, True)
    with pytest.raises(grpc.RpcError) as too_many:
        activity.RecordWorkouts(
            user_pb2.RecordWorkoutsRequest(workouts=workouts[:1] * 101), timeout=TIMEOUT
        )
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as not_yours:  # the gateway's certificate: not its call
        stub.RecordWorkouts(user_pb2.RecordWorkoutsRequest(workouts=workouts), timeout=TIMEOUT)
    assert not_yours.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_it_maps_domain_errors_to_status_codes(stack, channels):
    stub = _user_stub(stack, channels)
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetUser(user_pb2.GetUserRequest(user_id="nobody"), timeout=TIMEOUT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as invalid:
        stub.RegisterUser(user_pb2.UserRequest(username="x"), timeout=TIMEOUT)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_it_runs_a_workout_over_grpc(stack, channels, api):
    user_id, token = api.new_user()
    name = [r.name for r in stack.replicas if r.service == "activity_service"][1]
    stub = activity_pb2_grpc.ActivityServiceStub(channels[name])
    started = stub.StartWorkoutSession(
        activity_pb2.WorkoutRequest(user_id=user_id, workout_type="hiking"), timeout=TIMEOUT
    )
    # Started now over gRPC: ended 2 minutes on (within the clock skew allowed), it counts.
    end_time = dt.datetime.fromisoformat(started.start_time) + dt.timedelta(minutes=2)
    ended = stub.EndWorkoutSession(
        activity_pb2.SessionRequest(
            session_id=started.session_id, user_id=user_id, end_time=end_time.isoformat()
        ),
        timeout=TIMEOUT,
    )
    assert (ended.status, ended.duration) == ("ended", 2.0)
    stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 1


def test_a_group_workout_too_short_to_count_is_saved_discarded(stack, channels, api):
    """Who left a group session within the minimum keeps the workout, counted nowhere."""
    (stayed, stayed_token), (left, left_token) = api.new_user(), api.new_user()
    name = stack.replicas_of("activity_service")[0].name
    stub = activity_pb2_grpc.ActivityServiceStub(channels[name])
    end = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    start = end - dt.timedelta(minutes=30)
    member = activity_pb2.GroupParticipant
    saved = stub.SaveGroupSession(
        activity_pb2.GroupSession(
            group_session_id=str(uuid.uuid4()),
            creator_id=stayed,
            workout_type="hiit",
            name="lunch",
            started_at=start.isoformat(),
            ended_at=end.isoformat(),
            participants=[
                member(user_id=stayed, joined_at=start.isoformat()),
                member(
                    user_id=left,
                    joined_at=start.isoformat(),
                    left_at=(start + dt.timedelta(seconds=20)).isoformat(),
                ),
            ],
            timeline_json="[]",
            exercises_json="[]",
            votes_json="[]",
        ),
        timeout=TIMEOUT,
    )
    stayed_id, left_id = saved.workout_session_ids
    for user_id, token, workout_id, status, count in (
        (stayed, stayed_token, stayed_id, "ended", 1),
        (left, left_token, left_id, "discarded", 0),
    ):
        workout = api.get(f"{api.activity_url}/workouts/{workout_id}", token).json()
        assert (workout["status"], workout["source"]) == (status, "group"), workout
        stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
        assert stats["total_workouts"] == count
