"""What can go wrong in the activity service, in domain terms."""

from __future__ import annotations

from fitness.errors import Conflict, NotFound, ValidationFailed


class SessionNotFound(NotFound):
    """No such workout session (or someone else's)."""

    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"No workout session {session_id!r}.")


class SessionAlreadyActive(Conflict):
    """A live session is already running for this user."""

    code = "session_already_active"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"You already have an active workout session ({session_id}); end it first.",
            fields={"active_session_id": session_id},
        )


class UserNotFound(NotFound):
    """No such user."""

    code = "user_not_found"

    def __init__(self, user_id: str) -> None:
        super().__init__(f"No user {user_id!r}.")


class WorkoutExists(Conflict):
    """A workout of this type starting at this time is there already (its id in ``fields``)."""

    code = "workout_exists"

    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"You already have this workout ({session_id}): same type, same start.",
            fields={"session_id": session_id},
        )


class UnsupportedFormat(ValidationFailed):
    """An import whose file name ends in nothing we read."""

    code = "unsupported_format"

    def __init__(self, name: str, accepted: str) -> None:
        super().__init__(
            f"{name!r} is not a file this service imports; accepted: {accepted}.",
            fields={"file": f"One of {accepted}, optionally gzipped (.gz)."},
        )


class UnreadableFile(ValidationFailed):
    """An import that does not parse: a cut FIT file, broken gzip or XML, a CSV in neither layout,
    too many rows."""

    code = "unreadable_file"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r} could not be read: {reason}.", fields={"file": reason})


class UnsafeFile(ValidationFailed):
    """An import refused as hostile: a DTD or entities, a zip or gzip bomb."""

    code = "unsafe_file"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name!r} was refused: {reason}.", fields={"file": reason})


class NothingImported(ValidationFailed):
    """An import in which every activity was rejected (the reasons in ``fields``)."""

    code = "nothing_imported"

    def __init__(self, rejected: dict[str, str]) -> None:
        super().__init__("The file holds no workout that could be imported.", fields=rejected)


class ImportNotFound(NotFound):
    """No such import job."""

    code = "import_not_found"

    def __init__(self, import_id: str) -> None:
        super().__init__(f"No import {import_id!r}.")


class FileTooLarge(ValidationFailed):
    """One activity file over its limit (only an archive may be larger)."""

    code = "file_too_large"
    http_status = 413

    def __init__(self, name: str, limit: int) -> None:
        reason = f"one file may be at most {limit // 2**20} MiB; only a zip archive may be larger"
        super().__init__(f"{name!r} is too large: {reason}.", fields={"file": reason})
