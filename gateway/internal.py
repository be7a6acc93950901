"""The gateway's own connections behind the services: gRPC clients of both (goal sagas, saved
live sessions) and the state Redis (saga log, live sessions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask

from fitness import config, mtls
from fitness.config import COMMON_DEFAULTS, split_targets
from fitness.redisconn import state_redis
from fitness.rpc import ServiceClient
from fitness.v1 import activity_pb2_grpc, user_pb2_grpc
from gateway.sagas.goals import Participants


@dataclass(frozen=True)
class Settings(config.Settings):
    """Where the services' gRPC servers and the state Redis are, and the gateway's identity."""

    state_redis_url: str = "redis://127.0.0.1:6390/0"
    state_redis_password: str = field(default="", repr=False)  # never in a log line or traceback
    state_redis_timeout_seconds: float = 2.0
    # Replicas each saga checkpoint must reach (WAIT) before the step runs: 1 with a replica.
    state_redis_wait_count: int = 0
    # Shared with every process (``fitness.config.COMMON_DEFAULTS``).
    user_grpc_targets: str = COMMON_DEFAULTS["USER_GRPC_TARGETS"]
    activity_grpc_targets: str = COMMON_DEFAULTS["ACTIVITY_GRPC_TARGETS"]
    grpc_timeout_seconds: float = COMMON_DEFAULTS["GRPC_TIMEOUT_SECONDS"]
    env: str = COMMON_DEFAULTS["ENV"]
    data_dir: str = COMMON_DEFAULTS["DATA_DIR"]
    tls_dir: str = COMMON_DEFAULTS["TLS_DIR"]

    def identity(self) -> mtls.Identity:
        """Return the gateway's mTLS identity (made on first use in development)."""
        return mtls.identity(
            {"ENV": self.env, "DATA_DIR": self.data_dir, "TLS_DIR": self.tls_dir}, "gateway"
        )


def init_app(app: Flask, settings: Settings | None = None) -> list:
    """Set up the gRPC clients (with the gateway's mTLS identity) and the state Redis client;
    nothing runs in the background."""
    settings = settings or Settings.from_env()
    timeout = settings.grpc_timeout_seconds
    me = settings.identity()
    participants = Participants(
        users=ServiceClient(
            split_targets(settings.user_grpc_targets),
            user_pb2_grpc.UserServiceStub,
            timeout,
            me,
            "user_service",
        ),
        activity=ServiceClient(
            split_targets(settings.activity_grpc_targets),
            activity_pb2_grpc.ActivityServiceStub,
            timeout,
            me,
            "activity_service",
        ),
    )
    state = state_redis(
        settings.state_redis_url,
        settings.state_redis_timeout_seconds,
        password=settings.state_redis_password,
    )
    app.extensions.update(participants=participants, state_redis=state)
    return []
