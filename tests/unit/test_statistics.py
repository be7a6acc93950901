"""A user's statistics, in process: what ended sessions add to the totals, and what is read."""

from __future__ import annotations

from activity_service.totals import statistics, sum_sessions

SESSIONS = [
    {"duration": 30.0, "calories_burned": 300.0},
    {"duration": 45.5, "calories_burned": 410.4},
    {"duration": 20.0, "calories_burned": None},  # weight not known yet: no calories
]


def test_statistics_add_up_the_sessions_and_average_their_minutes():
    assert statistics(sum_sessions(SESSIONS)) == {
        "total_workouts": 3,
        "total_duration": 95.5,
        "total_calories_burned": 710.4,
        "average_session_duration": 31.83,
    }


def test_before_the_first_workout_everything_is_zero():
    assert statistics(sum_sessions([])) == {
        "total_workouts": 0,
        "total_duration": 0.0,
        "total_calories_burned": 0.0,
        "average_session_duration": 0.0,
    }


def test_sessions_added_together_or_one_by_one_give_the_same_totals():
    one_by_one = [sum_sessions([session]) for session in SESSIONS]
    added_up = {key: sum(sums[key] for sums in one_by_one) for key in one_by_one[0]}
    assert added_up == sum_sessions(SESSIONS)
    assert sum_sessions(SESSIONS[:1]) == {"workouts": 1, "duration": 30.0, "calories": 300.0}


def test_a_workout_count_stays_a_whole_number():
    assert isinstance(statistics(sum_sessions(SESSIONS))["total_workouts"], int)
    assert isinstance(sum_sessions(SESSIONS)["workouts"], int)
