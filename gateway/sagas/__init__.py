"""Sagas run by the gateway: goal changes that span the user and activity services.

``init_app`` sets up the coordinator on the state Redis and the gRPC clients of
``gateway.internal`` (which must be set up first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    "SAGA_WAIT_SECONDS": 5.0,
    "SAGA_STEP_DEADLINE_SECONDS": 5.0,
    "SAGA_COMPENSATION_DEADLINE_SECONDS": 30.0,
    "SAGA_LEASE_SECONDS": 5.0,
    "SAGA_RECOVERY_SECONDS": 1.0,
    "SAGA_WORKERS": 64,
}


def init_app(app: Flask, settings: dict[str, Any]) -> list[Callable[[threading.Event], None]]:
    """Set up the saga coordinator, its log in the state Redis; return its recovery loop."""
    from gateway.sagas.coordinator import Coordinator, CoordinatorSettings
    from gateway.sagas.log import SagaLog

    extensions = app.extensions
    saga_log = SagaLog(
        extensions["state_redis"],
        settings["SAGA_LEASE_SECONDS"],
        wait_replicas=settings["STATE_REDIS_WAIT_COUNT"],
    )

    def settled(saga) -> None:
        extensions["cache"].invalidate(saga.user_id)
        if saga.type != "create_goal":  # only changes of an existing goal lock it
            saga_log.unlock_goal(saga.data["goal_id"], saga.id)

    coordinator = Coordinator(
        saga_log,
        extensions["participants"],
        CoordinatorSettings(
            step_deadline_seconds=settings["SAGA_STEP_DEADLINE_SECONDS"],
            compensation_deadline_seconds=settings["SAGA_COMPENSATION_DEADLINE_SECONDS"],
            recovery_interval_seconds=settings["SAGA_RECOVERY_SECONDS"],
            workers=settings["SAGA_WORKERS"],
        ),
        on_settled=settled,
    )
    extensions["coordinator"] = coordinator
    return [coordinator.recover_forever]
