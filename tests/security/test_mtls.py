"""gRPC speaks mutual TLS only, and each method answers only the roles that need it."""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fitness import mtls
from fitness.v1 import activity_pb2, activity_pb2_grpc, user_pb2, user_pb2_grpc
from tests.support.client import wait_until
from tests.support.stack import grpc_channel, log_events

TIMEOUT = 5


def _check_health(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
        )
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def _user_replica(stack):
    return stack.replicas_of("user_service")[0]


def test_a_certificate_of_the_ca_gets_in(stack):
    assert _check_health(grpc_channel(stack, _user_replica(stack), "gateway")) == grpc.StatusCode.OK


def test_it_refuses_plaintext(stack):
    plain = grpc.insecure_channel(_user_replica(stack).grpc_target)
    assert _check_health(plain) == grpc.StatusCode.UNAVAILABLE


def test_it_refuses_a_certificate_from_another_ca(stack, tmp_path):
    mtls.ensure_material(tmp_path)  # a CA of our own, with a "gateway" certificate
    stranger = mtls.identity({"DATA_DIR": str(tmp_path), "TLS_DIR": str(tmp_path)}, "gateway")
    replica = _user_replica(stack)
    channel = mtls.channel(replica.grpc_target, stranger, replica.service)
    assert _check_health(channel) == grpc.StatusCode.UNAVAILABLE


def test_the_client_refuses_a_server_of_another_role(stack):
    # Reaching a user replica while expecting the activity service: the name check fails.
    replica = _user_replica(stack)
    me = mtls.identity({"DATA_DIR": str(stack.data_dir)}, "gateway")
    channel = mtls.channel(replica.grpc_target, me, "activity_service")
    assert _check_health(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("role", "service", "method", "request_"),
    [
        (
            "activity_service",
            "user_service",
            "CreateGoal",
            user_pb2.CreateGoalRequest(user_id="u", goal_type="workout_count", target_value=1),
        ),
        ("activity_service", "activity_service", "ApplyGoal", activity_pb2.GoalState()),
        ("gateway", "user_service", "RecordWorkout", user_pb2.RecordWorkoutRequest()),
        ("user_service", "user_service", "GetUser", user_pb2.GetUserRequest(user_id="u")),
    ],
)
def test_it_refuses_a_role_the_method_does_not_allow(stack, role, service, method, request_):
    replica = stack.replicas_of(service)[0]
    stubs = {
        "user_service": user_pb2_grpc.UserServiceStub,
        "activity_service": activity_pb2_grpc.ActivityServiceStub,
    }
    stub = stubs[service](grpc_channel(stack, replica, role))
    with pytest.raises(grpc.RpcError) as refused:
        getattr(stub, method)(request_, timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    full = f"/fitness.v1.{stub.__class__.__name__.removesuffix('Stub')}/{method}"
    assert role not in mtls.CALLERS[full]  # the table says so, not only the server

    def logged() -> bool:
        events = log_events(stack.log_path(replica.name))
        return any(e.get("message") == f"refused gRPC {full} from {role}" for e in events)

    assert wait_until(logged, timeout=5), "no log event says who tried what"


def test_an_allowed_role_gets_an_answer(stack):
    stub = user_pb2_grpc.UserServiceStub(
        grpc_channel(stack, _user_replica(stack), "activity_service")
    )
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetUser(user_pb2.GetUserRequest(user_id=str(uuid.uuid4())), timeout=TIMEOUT)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND  # past the caller check
