from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserRequest(_message.Message):
    __slots__ = ("username", "email", "password", "weight_kg")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_KG_FIELD_NUMBER: _ClassVar[int]
    username: str
    email: str
    password: str
    weight_kg: float
    def __init__(self, username: _Optional[str] = ..., email: _Optional[str] = ..., password: _Optional[str] = ..., weight_kg: _Optional[float] = ...) -> None: ...

class UserResponse(_message.Message):
    __slots__ = ("user_id", "username", "email", "weight_kg", "created_at")
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
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., email: _Optional[str] = ..., weight_kg: _Optional[float] = ..., created_at: _Optional[str] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class StepRef(_message.Message):
    __slots__ = ("saga_id", "step", "supersedes")
    SAGA_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDES_FIELD_NUMBER: _ClassVar[int]
    saga_id: str
    step: str
    supersedes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, saga_id: _Optional[str] = ..., step: _Optional[str] = ..., supersedes: _Optional[_Iterable[str]] = ...) -> None: ...

class GoalRequest(_message.Message):
    __slots__ = ("user_id", "goal_id", "step")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_id: str
    step: StepRef
    def __init__(self, user_id: _Optional[str] = ..., goal_id: _Optional[str] = ..., step: _Optional[_Union[StepRef, _Mapping]] = ...) -> None: ...

class GoalResponse(_message.Message):
    __slots__ = ("goal_id", "user_id", "goal_type", "target_value", "target_date", "current_progress", "achieved", "achieved_at", "workout_type", "status", "created_at")
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
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
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
    created_at: str
    def __init__(self, goal_id: _Optional[str] = ..., user_id: _Optional[str] = ..., goal_type: _Optional[str] = ..., target_value: _Optional[float] = ..., target_date: _Optional[str] = ..., current_progress: _Optional[float] = ..., achieved: _Optional[bool] = ..., achieved_at: _Optional[str] = ..., workout_type: _Optional[str] = ..., status: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class ListGoalsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ListGoalsResponse(_message.Message):
    __slots__ = ("goals",)
    GOALS_FIELD_NUMBER: _ClassVar[int]
    goals: _containers.RepeatedCompositeFieldContainer[GoalResponse]
    def __init__(self, goals: _Optional[_Iterable[_Union[GoalResponse, _Mapping]]] = ...) -> None: ...

class CreateGoalRequest(_message.Message):
    __slots__ = ("user_id", "goal_type", "target_value", "target_date", "workout_type", "request_id", "step", "goal_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    WORKOUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_type: str
    target_value: float
    target_date: str
    workout_type: str
    request_id: str
    step: StepRef
    goal_id: str
    def __init__(self, user_id: _Optional[str] = ..., goal_type: _Optional[str] = ..., target_value: _Optional[float] = ..., target_date: _Optional[str] = ..., workout_type: _Optional[str] = ..., request_id: _Optional[str] = ..., step: _Optional[_Union[StepRef, _Mapping]] = ..., goal_id: _Optional[str] = ...) -> None: ...

class UpdateGoalRequest(_message.Message):
    __slots__ = ("user_id", "goal_id", "target_value", "target_date", "step")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_id: str
    target_value: float
    target_date: str
    step: StepRef
    def __init__(self, user_id: _Optional[str] = ..., goal_id: _Optional[str] = ..., target_value: _Optional[float] = ..., target_date: _Optional[str] = ..., step: _Optional[_Union[StepRef, _Mapping]] = ...) -> None: ...

class RestoreGoalRequest(_message.Message):
    __slots__ = ("user_id", "goal_id", "target_value", "target_date", "status", "step")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_VALUE_FIELD_NUMBER: _ClassVar[int]
    TARGET_DATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    goal_id: str
    target_value: float
    target_date: str
    status: str
    step: StepRef
    def __init__(self, user_id: _Optional[str] = ..., goal_id: _Optional[str] = ..., target_value: _Optional[float] = ..., target_date: _Optional[str] = ..., status: _Optional[str] = ..., step: _Optional[_Union[StepRef, _Mapping]] = ...) -> None: ...

class RecordWorkoutRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "workout_type", "duration_minutes", "calories_burned", "ended_at")
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
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., workout_type: _Optional[str] = ..., duration_minutes: _Optional[float] = ..., calories_burned: _Optional[float] = ..., ended_at: _Optional[str] = ...) -> None: ...

class RecordWorkoutResponse(_message.Message):
    __slots__ = ("counted", "achieved_goals")
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    ACHIEVED_GOALS_FIELD_NUMBER: _ClassVar[int]
    counted: bool
    achieved_goals: _containers.RepeatedCompositeFieldContainer[GoalResponse]
    def __init__(self, counted: _Optional[bool] = ..., achieved_goals: _Optional[_Iterable[_Union[GoalResponse, _Mapping]]] = ...) -> None: ...

class RecordWorkoutsRequest(_message.Message):
    __slots__ = ("workouts",)
    WORKOUTS_FIELD_NUMBER: _ClassVar[int]
    workouts: _containers.RepeatedCompositeFieldContainer[RecordWorkoutRequest]
    def __init__(self, workouts: _Optional[_Iterable[_Union[RecordWorkoutRequest, _Mapping]]] = ...) -> None: ...

class RecordWorkoutsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RecordWorkoutResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[RecordWorkoutResponse, _Mapping]]] = ...) -> None: ...
