from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkoutRequest(_message.Message):
    __slots__ = ("user_id", "workout_type")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    workout_type: str
    def __init__(self, user_id: _Optional[str] = ..., workout_type: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("session_id", "end_time", "user_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    end_time: str
    user_id: str
    def __init__(self, session_id: _Optional[str] = ..., end_time: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class WorkoutResponse(_message.Message):
    __slots__ = ("session_id", "user_id", "workout_type", "start_time", "end_time", "duration", "calories_burned", "status")
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
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., workout_type: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., duration: _Optional[float] = ..., calories_burned: _Optional[float] = ..., status: _Optional[str] = ...) -> None: ...

class StatisticsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class StatisticsResponse(_message.Message):
    __slots__ = ("total_workouts", "total_duration", "total_calories_burned", "average_session_duration")
    TOTAL_WORKOUTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DURATION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CALORIES_BURNED_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_SESSION_DURATION_FIELD_NUMBER: _ClassVar[int]
    total_workouts: int
    total_duration: float
    total_calories_burned: float
    average_session_duration: float
    def __init__(self, total_workouts: _Optional[int] = ..., total_duration: _Optional[float] = ..., total_calories_burned: _Optional[float] = ..., average_session_duration: _Optional[float] = ...) -> None: ...

class GoalState(_message.Message):
    __slots__ = ("saga_id", "step", "goal_id", "user_id", "goal_type", "workout_type", "target_value", "target_date", "status", "created_at", "supersedes")
    SAGA_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    saga_id: str
    step: str
    goal_id: str
    user_id: str
    goal_type: str
    workout_type: str
    target_value: float
    target_date: str
    status: str
    created_at: str
    supersedes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, saga_id: _Optional[str] = ..., step: _Optional[str] = ..., goal_id: _Optional[str] = ..., user_id: _Optional[str] = ..., goal_type: _Optional[str] = ..., workout_type: _Optional[str] = ..., target_value: _Optional[float] = ..., target_date: _Optional[str] = ..., status: _Optional[str] = ..., created_at: _Optional[str] = ..., supersedes: _Optional[_Iterable[str]] = ...) -> None: ...

class GoalStateResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    def __init__(self, applied: _Optional[bool] = ...) -> None: ...

class GroupParticipant(_message.Message):
    __slots__ = ("user_id", "joined_at", "left_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    LEFT_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    joined_at: str
    left_at: str
    def __init__(self, user_id: _Optional[str] = ..., joined_at: _Optional[str] = ..., left_at: _Optional[str] = ...) -> None: ...

class GroupSession(_message.Message):
    __slots__ = ("group_session_id", "creator_id", "workout_type", "name", "started_at", "ended_at", "participants", "timeline_json", "exercises_json", "votes_json")
    GROUP_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATOR_ID_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_JSON_FIELD_NUMBER: _ClassVar[int]
    EXERCISES_JSON_FIELD_NUMBER: _ClassVar[int]
    VOTES_JSON_FIELD_NUMBER: _ClassVar[int]
    group_session_id: str
    creator_id: str
    workout_type: str
    name: str
    started_at: str
    ended_at: str
    participants: _containers.RepeatedCompositeFieldContainer[GroupParticipant]
    timeline_json: str
    exercises_json: str
    votes_json: str
    def __init__(self, group_session_id: _Optional[str] = ..., creator_id: _Optional[str] = ..., workout_type: _Optional[str] = ..., name: _Optional[str] = ..., started_at: _Optional[str] = ..., ended_at: _Optional[str] = ..., participants: _Optional[_Iterable[_Union[GroupParticipant, _Mapping]]] = ..., timeline_json: _Optional[str] = ..., exercises_json: _Optional[str] = ..., votes_json: _Optional[str] = ...) -> None: ...

class GroupSessionSaved(_message.Message):
    __slots__ = ("saved", "workout_session_ids")
    SAVED_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    saved: bool
    workout_session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, saved: _Optional[bool] = ..., workout_session_ids: _Optional[_Iterable[str]] = ...) -> None: ...
