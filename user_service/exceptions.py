"""What can go wrong in the user service, in domain terms."""

from __future__ import annotations

from fitness.errors import AuthenticationFailed, Conflict, NotFound


class AccountTaken(Conflict):
    """The email or username is taken."""

    code = "account_exists"


class InvalidCredentials(AuthenticationFailed):
    """Login with a wrong email or password."""

    code = "invalid_credentials"

    def __init__(self) -> None:
        # One message whether or not the email exists, so login can't probe for accounts.
        super().__init__("Email or password is incorrect.")


class UserNotFound(NotFound):
    """No such user."""

    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"No user {user_id!r}.")


class GoalNotFound(NotFound):
    """No such goal (or someone else's)."""

    code = "goal_not_found"

    def __init__(self, goal_id: str) -> None:
        super().__init__(f"No goal {goal_id!r} for this user.")


class GoalNotActive(Conflict):
    """The goal is cancelled: it can no longer change."""

    code = "goal_not_active"

    def __init__(self, goal_id: str) -> None:
        super().__init__(f"Goal {goal_id!r} is cancelled; it cannot be changed.")


class StepSuperseded(Conflict):
    """Between services only: a saga step arriving after the compensation that undid it."""

    code = "saga_step_superseded"

    def __init__(self, step: str, by: str) -> None:
        super().__init__(f"Saga step {step!r} was already undone by {by!r}; nothing to do.")
