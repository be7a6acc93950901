"""The goal operations: reads the services answer, the writes the gateway runs as sagas."""

from __future__ import annotations

from apidocs.examples import (
    COMPENSATED,
    GOAL,
    GOAL_BUSY,
    GOAL_NOT_ACTIVE,
    GOAL_NOT_FOUND,
    SAGA,
    SAGA_ID,
    SAGA_LOG_DOWN,
    SUGGESTIONS,
    USER_NOT_FOUND,
    error,
    in_saga,
    invalid,
)
from apidocs.operations import Operation
from fitness.workouts import GOAL_TYPES
from gateway.sagas import Settings as SagaSettings

SAGA_WAIT_SECONDS = SagaSettings.saga_wait_seconds


def saga_answers(steps: str, done_status: int) -> str:
    """Return how a goal write run as a saga answers, for its description."""
    return (
        f"The gateway runs it as a saga (see **Sagas** above): {steps}. It answers "
        f"{done_status} with the goal once every step is done, or 202 with `status_url` (also in "
        f"`Location`) if the saga is still going after {SAGA_WAIT_SECONDS:g} s: it goes on by "
        "itself; poll `GET /sagas/{saga_id}` for the outcome. When a service refuses a step, the "
        "answer is its refusal (400, 404, 409) with `saga`: state `failed` if nothing had changed "
        "yet, else `compensated`. When a service stays unavailable, the steps done are undone "
        "and the answer is 503 with `Retry-After`. Either way nothing changed. `X-Saga-ID` names "
        "the saga."
    )


GOAL_OPERATIONS = [
    Operation(
        method="post",
        path="/users/{user_id}/goals",
        tag="goals",
        operation_id="createGoal",
        summary="Set a goal",
        description="Progress counts workouts that end between the goal's creation and the end "
        "of its target date (of its workout type, if it has one): +1 per workout for "
        "`workout_count`, its minutes for `active_minutes`, its kcal for `calories_burned`.\n\n"
        + saga_answers(
            "the user service creates the goal, then the activity service registers it for "
            "suggestions; if that fails, the goal is deleted again",
            201,
        ),
        ok=(201, "Goal", {**GOAL, "current_progress": 0.0}),
        body="GoalBody",
        body_example={
            "goal_type": "active_minutes",
            "target_value": 150,
            "target_date": "2099-12-31",
        },
        errors={
            400: [
                invalid(("target_value", "Input should be a valid number")),
                in_saga(
                    invalid(
                        ("goal_type", f"Unknown goal type; accepted: {', '.join(GOAL_TYPES)}."),
                        ("target_date", "Must not be in the past."),
                    )
                ),
            ],
            404: [in_saga(USER_NOT_FOUND)],
            503: [COMPENSATED, SAGA_LOG_DOWN],
        },
        saga="create_goal",
    ),
    Operation(
        method="get",
        path="/users/{user_id}/goals",
        tag="goals",
        operation_id="listGoals",
        summary="List your goals",
        description="Every goal, newest first, cancelled ones included.",
        ok=(200, "GoalList", {"goals": [GOAL]}),
        errors={404: [USER_NOT_FOUND]},
    ),
    Operation(
        method="get",
        path="/users/{user_id}/goals/{goal_id}",
        tag="goals",
        operation_id="getGoal",
        summary="Read one goal",
        ok=(200, "Goal", GOAL),
        errors={404: [GOAL_NOT_FOUND]},
    ),
    Operation(
        method="patch",
        path="/users/{user_id}/goals/{goal_id}",
        tag="goals",
        operation_id="updateGoal",
        summary="Change a goal",
        description="Change the target value and/or date of an active goal (give at least "
        "one); `achieved` follows the new target.\n\n"
        + saga_answers(
            "the user service changes the goal, then the activity service learns the new "
            "target; if that fails, the previous target and date are restored",
            200,
        ),
        ok=(200, "Goal", {**GOAL, "target_value": 200.0}),
        body="GoalChangeBody",
        body_example={"target_value": 200},
        body_required=True,
        errors={
            400: [
                error("validation_failed", "Give target_value, target_date or both."),
                in_saga(invalid(("target_value", "Input should be greater than 0"))),
            ],
            404: [in_saga(GOAL_NOT_FOUND)],
            409: [in_saga(GOAL_NOT_ACTIVE), GOAL_BUSY],
            503: [COMPENSATED, SAGA_LOG_DOWN],
        },
        saga="change_goal",
    ),
    Operation(
        method="delete",
        path="/users/{user_id}/goals/{goal_id}",
        tag="goals",
        operation_id="cancelGoal",
        summary="Cancel a goal",
        description="The goal stays listed with status `cancelled` and stops counting "
        "progress. Cancelling again changes nothing.\n\n"
        + saga_answers(
            "the user service cancels the goal, then the activity service stops suggesting "
            "workouts for it; if that fails, the goal is made active again",
            200,
        ),
        ok=(200, "Goal", {**GOAL, "status": "cancelled"}),
        errors={
            404: [in_saga(GOAL_NOT_FOUND)],
            409: [GOAL_BUSY],
            503: [COMPENSATED, SAGA_LOG_DOWN],
        },
        saga="cancel_goal",
    ),
    Operation(
        method="get",
        path="/users/{user_id}/suggestions",
        tag="goals",
        operation_id="getSuggestions",
        summary="Workouts to reach your goals",
        description="Per active goal whose date has not passed: what remains of its target "
        "(from your ended workouts since it was set), spread evenly over the days left, as "
        "sessions a week of the goal's workout type (else your most frequent one of the last "
        "14 days, else walking), each as long as your average session of those 14 days (10 to "
        "120 minutes; 30 without any). Soonest target date first. The activity service learns "
        "of a goal from its saga, so a goal shows here once its saga has completed.",
        ok=(200, "Suggestions", SUGGESTIONS),
    ),
    Operation(
        method="get",
        path="/sagas/{saga_id}",
        tag="sagas",
        operation_id="getSaga",
        summary="How a goal write went",
        description="The state, error and step-by-step history of a saga you started (its id "
        "is in `X-Saga-ID`, in a 202's `status_url` and in a failed write's `saga`). Poll it "
        "after a 202 until the state is final: `completed` (the goal was written), `failed` "
        "(refused; nothing changed) or `compensated` (undone; nothing changed). Sagas of "
        "other users are not found.",
        ok=(200, "Saga", SAGA),
        errors={
            404: [error("not_found", f"No saga '{SAGA_ID}'.")],
            503: [error("unavailable", "The saga log is unavailable right now; retry shortly.")],
        },
        own=True,
    ),
]
