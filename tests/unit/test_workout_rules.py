"""What a workout is worth, in process: calories from METs, a logged workout's span, and the
minimum that counts."""

from __future__ import annotations

import datetime as dt

import pytest

from activity_service.schemas import LogWorkoutBody
from activity_service.service import finished_span, logged_workout
from fitness.errors import ValidationFailed
from fitness.web import validate
from fitness.workouts import WORKOUT_METS, calories_burned

START = dt.datetime(2026, 3, 1, 7, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("workout_type", "weight", "minutes", "kcal"),
    [
        ("running", 70.0, 60.0, round(WORKOUT_METS["running"] * 70.0, 1)),  # MET x kg x hours
        ("walking", 80.0, 30.0, round(WORKOUT_METS["walking"] * 80.0 * 0.5, 1)),
        ("yoga", 55.0, 0.0, 0.0),
    ],
)
def test_calories_are_met_times_weight_times_hours(workout_type, weight, minutes, kcal):
    assert calories_burned(workout_type, weight, minutes) == kcal


def test_a_harder_workout_burns_more_for_the_same_time_and_weight():
    assert calories_burned("running", 70, 30) > calories_burned("walking", 70, 30)


def test_a_logged_workout_ends_at_its_end_or_after_its_duration():
    assert finished_span(START, None, 45.0, 1.0) == START + dt.timedelta(minutes=45)
    end = START + dt.timedelta(minutes=20)
    assert finished_span(START, end, None, 1.0) == end


@pytest.mark.parametrize(
    ("end", "duration", "field"),
    [
        (None, None, "duration"),  # neither
        (START + dt.timedelta(minutes=5), 5.0, "duration"),  # both
        (START + dt.timedelta(hours=25), None, "end_time"),  # longer than a day
        (START + dt.timedelta(seconds=30), None, "end_time"),  # shorter than the minimum
    ],
)
def test_a_logged_workout_that_cannot_be_is_refused_naming_the_field(end, duration, field):
    with pytest.raises(ValidationFailed) as refused:
        finished_span(START, end, duration, 1.0)
    assert field in refused.value.fields


def test_a_logged_workout_without_calories_gets_none_until_the_weight_is_known():
    body = validate(
        LogWorkoutBody,
        {"workout_type": "cycling", "start_time": START.isoformat(), "duration": 40},
    )
    workout = logged_workout(body, 1.0)
    assert (workout.workout_type, workout.end_time) == ("cycling", START + dt.timedelta(minutes=40))
    assert workout.calories_burned is None  # computed from METs when stored, with the weight
    assert workout.source == "logged"
