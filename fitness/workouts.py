"""Workout types and their MET values, the vocabulary both services share.

MET (metabolic equivalent of task) values from the 2011 Compendium of Physical Activities
(Ainsworth et al., Med Sci Sports Exerc 43(8):1575-81; https://pacompendium.com), taking the
"general" or moderate entry of each activity. Calories = MET x body weight (kg) x hours.
"""

from __future__ import annotations

WORKOUT_METS: dict[str, float] = {
    "running": 9.8,  # 12110: running, 6 mph (10 min/mile)
    "cycling": 7.5,  # 01015: bicycling, general
    "swimming": 5.8,  # 18310: swimming laps, freestyle, light/moderate effort
    "walking": 4.3,  # 17200: walking, 3.5 mph, level, brisk
    "hiking": 6.0,  # 17080: hiking, cross country
    "strength": 6.0,  # 02050: resistance training, vigorous effort
    "hiit": 8.0,  # 02040: circuit training, vigorous, minimal rest
    "rowing": 7.0,  # 02070: rowing, stationary, moderate effort
    "yoga": 2.5,  # 02150: yoga, hatha
    "elliptical": 5.0,  # 02048: elliptical trainer, moderate effort
    "dancing": 7.3,  # 03015: aerobic dance, general
}

WORKOUT_TYPES: tuple[str, ...] = tuple(sorted(WORKOUT_METS))

GOAL_TYPES = ("workout_count", "active_minutes", "calories_burned")
"""What a goal measures: finished workouts, their minutes, or the calories they burned."""

GOAL_ACTIVE, GOAL_CANCELLED, GOAL_DELETED = "active", "cancelled", "deleted"
GOAL_STATUSES = (GOAL_ACTIVE, GOAL_CANCELLED)
"""A goal counts while active; cancelled, it stays listed and counts no more."""
GOAL_COPY_STATUSES = (*GOAL_STATUSES, GOAL_DELETED)
"""The activity service's copy of a goal may also be deleted: a creation the saga undid."""

SESSION_STATUSES = ("active", "ended", "discarded")
"""A session is active until it ends; one that ends shorter than ``MIN_WORKOUT_MINUTES`` is
kept in the user's history as "discarded" and counts nowhere (statistics, goals, warehouse)."""

MIN_WORKOUT_MINUTES = 1.0
"""The shortest workout that counts, the same for live, logged, group and imported ones.

Without it a session started and ended at once (0.0 minutes, 0.0 kcal) added 1 to every
workout-count goal. One minute still counts a short set or a plank."""

MAX_WORKOUT_MINUTES = 24 * 60
"""The longest workout: a longer one is a session someone forgot to end."""

DEFAULT_BODY_WEIGHT_KG = 70.0
"""Used for calories when a user has not given a weight (a common adult reference weight)."""

WEIGHT_FROM_PROFILE, WEIGHT_DEFAULT = "profile", "default"
WEIGHT_SOURCES = (WEIGHT_FROM_PROFILE, WEIGHT_DEFAULT)
"""Where a session's weight (for its calories) came from: the user's profile, or the default
because the profile had none or the user service did not answer in time."""


def calories_burned(workout_type: str, weight_kg: float, duration_minutes: float) -> float:
    """Return the calories burned by ``weight_kg`` doing ``workout_type`` for the duration."""
    return round(WORKOUT_METS[workout_type] * weight_kg * duration_minutes / 60.0, 1)
