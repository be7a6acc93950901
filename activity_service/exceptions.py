"""What can go wrong in the activity service, in domain terms."""

from __future__ import annotations

from fitness.errors import Conflict, NotFound


class SessionNotFound(NotFound):
    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"No workout session {session_id!r}.")


class SessionAlreadyActive(Conflict):
    code = "session_already_active"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"You already have an active workout session ({session_id}); end it first.",
            fields={"active_session_id": session_id},
        )


class UserNotFound(NotFound):
    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"No user {user_id!r}.")
