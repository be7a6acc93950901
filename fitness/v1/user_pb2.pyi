from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers

DESCRIPTOR: _descriptor.FileDescriptor

class UserRequest(_message.Message):
    __slots__ = ("email", "password", "username", "weight_kg")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_KG_FIELD_NUMBER: _ClassVar[int]
    username: str
    email: str
    password: str
    weight_kg: float
    def __init__(
        self,
        username: str | None = ...,
        email: str | None = ...,
        password: str | None = ...,
        weight_kg: float | None = ...,
    ) -> None: ...

class UserResponse(_message.Message):
    __slots__ = ("created_at", "email", "user_id", "username", "weight_kg")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_KG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    email: str
    weight_kg: float
    created_at: str
    def __init__(
        self,
        user_id: str | None = ...,
        username: str | None = ...,
        email: str | None = ...,
        weight_kg: float | None = ...,
        created_at: str | None = ...,
    ) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: str | None = ...) -> None: ...

class GoalRequest(_message.Message):
    __slots__ = ("goal_id", "user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_id: str
    def __init__(self, user_id: str | None = ..., goal_id: str | None = ...) -> None: ...

class GoalResponse(_message.Message):
    __slots__ = (
        "achieved",
        "achieved_at",
        "current_progress",
        "goal_id",
        "goal_type",
        "status",
        "target_date",
        "target_value",
        "user_id",
        "workout_type",
    )
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_AT_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    goal_id: str
    user_id: str
    goal_type: str
    target_value: float
    target_date: str
    current_progress: float
    achieved: bool
    achieved_at: str
    workout_type: str
    status: str
    def __init__(
        self,
        goal_id: str | None = ...,
        user_id: str | None = ...,
        goal_type: str | None = ...,
        target_value: float | None = ...,
        target_date: str | None = ...,
        current_progress: float | None = ...,
        achieved: bool | None = ...,
        achieved_at: str | None = ...,
        workout_type: str | None = ...,
        status: str | None = ...,
    ) -> None: ...

class ListGoalsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: str | None = ...) -> None: ...

class ListGoalsResponse(_message.Message):
    __slots__ = ("goals",)
    GOALS_FIELD_NUMBER: _ClassVar[int]
    goals: _containers.RepeatedCompositeFieldContainer[GoalResponse]
    def __init__(self, goals: _Iterable[GoalResponse | _Mapping] | None = ...) -> None: ...

class CreateGoalRequest(_message.Message):
    __slots__ = (
        "goal_type",
        "request_id",
        "target_date",
        "target_value",
        "user_id",
        "workout_type",
    )
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_type: str
    target_value: float
    target_date: str
    workout_type: str
    request_id: str
    def __init__(
        self,
        user_id: str | None = ...,
        goal_type: str | None = ...,
        target_value: float | None = ...,
        target_date: str | None = ...,
        workout_type: str | None = ...,
        request_id: str | None = ...,
    ) -> None: ...

class UpdateGoalRequest(_message.Message):
    __slots__ = ("goal_id", "target_date", "target_value", "user_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_id: str
    target_value: float
    target_date: str
    def __init__(
        self,
        user_id: str | None = ...,
        goal_id: str | None = ...,
        target_value: float | None = ...,
        target_date: str | None = ...,
    ) -> None: ...

class RecordWorkoutRequest(_message.Message):
    __slots__ = (
        "calories_burned",
        "duration_minutes",
        "ended_at",
        "session_id",
        "user_id",
        "workout_type",
    )
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    CALORIES_BURNED_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    workout_type: str
    duration_minutes: float
    calories_burned: float
    ended_at: str
    def __init__(
        self,
        session_id: str | None = ...,
        user_id: str | None = ...,
        workout_type: str | None = ...,
        duration_minutes: float | None = ...,
        calories_burned: float | None = ...,
        ended_at: str | None = ...,
    ) -> None: ...

class RecordWorkoutResponse(_message.Message):
    __slots__ = ("achieved_goals", "counted")
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_GOALS_FIELD_NUMBER: _ClassVar[int]
    counted: bool
    achieved_goals: _containers.RepeatedCompositeFieldContainer[GoalResponse]
    def __init__(
        self,
        counted: bool | None = ...,
        achieved_goals: _Iterable[GoalResponse | _Mapping] | None = ...,
    ) -> None: ...
