from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message

DESCRIPTOR: _descriptor.FileDescriptor

class WorkoutRequest(_message.Message):
    __slots__ = ("user_id", "workout_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    workout_type: str
    def __init__(self, user_id: str | None = ..., workout_type: str | None = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("end_time", "session_id", "user_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    end_time: str
    user_id: str
    def __init__(
        self, session_id: str | None = ..., end_time: str | None = ..., user_id: str | None = ...
    ) -> None: ...

class WorkoutResponse(_message.Message):
    __slots__ = (
        "calories_burned",
        "duration",
        "end_time",
        "session_id",
        "start_time",
        "status",
        "user_id",
        "workout_type",
    )
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CALORIES_BURNED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    workout_type: str
    start_time: str
    end_time: str
    duration: float
    calories_burned: float
    status: str
    def __init__(
        self,
        session_id: str | None = ...,
        user_id: str | None = ...,
        workout_type: str | None = ...,
        start_time: str | None = ...,
        end_time: str | None = ...,
        duration: float | None = ...,
        calories_burned: float | None = ...,
        status: str | None = ...,
    ) -> None: ...

class StatisticsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: str | None = ...) -> None: ...

class StatisticsResponse(_message.Message):
    __slots__ = (
        "average_session_duration",
        "total_calories_burned",
        "total_duration",
        "total_workouts",
    )
    TOTAL_WORKOUTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CALORIES_BURNED_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_SESSION_DURATION_FIELD_NUMBER: _ClassVar[int]
    total_workouts: int
    total_duration: float
    total_calories_burned: float
    average_session_duration: float
    def __init__(
        self,
        total_workouts: int | None = ...,
        total_duration: float | None = ...,
        total_calories_burned: float | None = ...,
        average_session_duration: float | None = ...,
    ) -> None: ...
