"""Activity service: workout sessions, calories and statistics (Flask + pymongo + gRPC)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from fitness import mtls, serving, web, workouts
from fitness.config import split_targets
from fitness.imports import IMPORT_PATH
from fitness.rpc import ServiceClient
from fitness.v1 import activity_pb2_grpc, user_pb2_grpc

SERVICE_NAME = "activity_service"

DEFAULTS: dict[str, Any] = {
    "MONGO_URL": "",
    "MONGO_PASSWORD": "",
    "HTTP_PORT": 5001,
    "GRPC_PORT": 50052,
    "WORKERS": 1,
    "THREADS": 16,
    # Deadline of each call to a user replica made while a client waits (the weight at workout
    # start, the progress report at workout end). Both have a fallback (the default weight, the
    # outbox loop), so a slow user service must not hold every request thread for the full
    # GRPC_TIMEOUT_SECONDS: that turned user-service overload into activity-service outages.
    "INLINE_GRPC_TIMEOUT_SECONDS": 1.0,
    # The shortest workout that counts (0 to 60): shorter live and group ones end "discarded",
    # shorter logged ones are refused.
    "MIN_WORKOUT_MINUTES": workouts.MIN_WORKOUT_MINUTES,
    # Processes that read an archive's files while its import job runs (0: one per core).
    # They run at the lowest CPU priority, and only while a job runs.
    "IMPORT_JOB_PROCESSES": 0,
    # Seconds an import job rests between storing two batches of 20 activities (0: none), so its
    # store work leaves room for other users' requests (docs/benchmarks.md, Imports).
    "IMPORT_JOB_REST_SECONDS": 0.2,
}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the activity service's app; nothing connects to the network until needed."""
    from activity_service import routes
    from activity_service.exports import ExportService
    from activity_service.goals import GoalRegistry
    from activity_service.groups import GroupSessions
    from activity_service.grpc_api import ActivityServicer
    from activity_service.imports.service import ImportService
    from activity_service.service import UserDirectory, WorkoutService
    from activity_service.store import ActivityStore

    app, settings = web.new_app(SERVICE_NAME, DEFAULTS, test_config)

    store = ActivityStore(settings["MONGO_URL"])
    user_client = ServiceClient(
        split_targets(settings["USER_GRPC_TARGETS"]),
        user_pb2_grpc.UserServiceStub,
        timeout=settings["GRPC_TIMEOUT_SECONDS"],
        me=mtls.identity(settings, SERVICE_NAME),
        server_role="user_service",
    )
    users = UserDirectory(user_client, settings["INLINE_GRPC_TIMEOUT_SECONDS"])
    sessions = WorkoutService(store, users, settings["MIN_WORKOUT_MINUTES"])
    goals = GoalRegistry(store)
    groups = GroupSessions(store, sessions)
    app.extensions.update(
        store=store,
        workouts=sessions,
        goals=goals,
        imports=ImportService(
            store,
            sessions,
            settings["IMPORT_JOB_PROCESSES"],
            settings["IMPORT_JOB_REST_SECONDS"],
        ),
        exports=ExportService(store, users),
        user_client=user_client,
    )

    web.init_app(app, ready_check=store.check_ready)
    web.allow_uploads(app, IMPORT_PATH, settings["MAX_UPLOAD_BYTES"])
    app.register_blueprint(routes.bp)
    servicer = ActivityServicer(sessions, goals, groups)
    serving.plan_worker(
        app,
        serving.WorkerPlan(
            grpc_register=[
                lambda server: activity_pb2_grpc.add_ActivityServiceServicer_to_server(
                    servicer, server
                )
            ],
            ready_check=store.check_ready,
            background=[sessions.report_pending, app.extensions["imports"].jobs.run],
        ),
    )
    return app
