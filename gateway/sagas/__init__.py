"""Sagas run by the gateway: goal changes that span the user and activity services.

``init_app`` sets up the coordinator on the state Redis and the gRPC clients of
``gateway.internal`` (which must be set up first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from fitness import config


@dataclass(frozen=True)
class Settings(config.Settings):
    """How long a client waits for a saga, each step's deadline, and the recovery of sagas."""

    saga_wait_seconds: float = 5.0
    saga_step_deadline_seconds: float = 5.0
    saga_compensation_deadline_seconds: float = 30.0
    saga_lease_seconds: float = 5.0
    saga_recovery_seconds: float = 1.0
    saga_workers: int = 64
    # The state Redis's (``gateway.internal``): replicas a checkpoint must reach first.
    state_redis_wait_count: int = 0


def init_app(
    app: Flask, settings: Settings | None = None
) -> list[Callable[[threading.Event], None]]:
    """Set up the saga coordinator, its log in the state Redis; return its recovery loop."""
    from gateway.sagas.coordinator import Coordinator, CoordinatorSettings
    from gateway.sagas.log import SagaLog

    settings = settings or Settings.from_env()
    extensions = app.extensions
    saga_log = SagaLog(
        extensions["state_redis"],
        settings.saga_lease_seconds,
        wait_replicas=settings.state_redis_wait_count,
    )

    def settled(saga) -> None:
        extensions["cache"].invalidate(saga.user_id)
        if saga.type != "create_goal":  # only changes of an existing goal lock it
            saga_log.unlock_goal(saga.data["goal_id"], saga.id)

    coordinator = Coordinator(
        saga_log,
        extensions["participants"],
        CoordinatorSettings(
            step_deadline_seconds=settings.saga_step_deadline_seconds,
            compensation_deadline_seconds=settings.saga_compensation_deadline_seconds,
            recovery_interval_seconds=settings.saga_recovery_seconds,
            workers=settings.saga_workers,
        ),
        on_settled=settled,
    )
    extensions["coordinator"] = coordinator
    return [coordinator.recover_forever]
