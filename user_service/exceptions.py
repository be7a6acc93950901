"""What can go wrong in the user service, in domain terms."""

from __future__ import annotations

from fitness.errors import AuthenticationFailed, Conflict, NotFound


class AccountTaken(Conflict):
    code = "account_exists"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"

    def __init__(self) -> None:
        # One message whether or not the email exists, so login can't probe for accounts.
        super().__init__("Email or password is incorrect.")


class UserNotFound(NotFound):
    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"No user {user_id!r}.")


class GoalNotFound(NotFound):
    code = "goal_not_found"

    def __init__(self, goal_id: str) -> None:
        super().__init__(f"No goal {goal_id!r} for this user.")


class GoalNotActive(Conflict):
    code = "goal_not_active"

    def __init__(self, goal_id: str) -> None:
        super().__init__(f"Goal {goal_id!r} is cancelled; it cannot be changed.")


class StepSuperseded(Conflict):
    code = "saga_step_superseded"

    def __init__(self, step: str, by: str) -> None:
        super().__init__(f"Saga step {step!r} was already undone by {by!r}; nothing to do.")
