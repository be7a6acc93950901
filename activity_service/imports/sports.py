"""What each file format calls a sport, mapped to our workout types (documented in docs/api.md).

Names are compared lower-case with spaces, dashes and underscores removed, so FIT's
``strength_training``, TCX's ``Biking`` and Strava's ``Weight Training`` all match.
"""

from __future__ import annotations

from fitness.workouts import WORKOUT_TYPES

SPORT_TYPES: dict[str, str] = {
    # FIT sport / sub_sport names (fitdecode gives them as strings), TCX Sport, GPX <type>,
    # Strava's activity types, and the words people write in a CSV.
    "running": "running",
    "run": "running",
    "trailrunning": "running",
    "treadmillrunning": "running",
    "treadmill": "running",
    "virtualrun": "running",
    "cycling": "cycling",
    "biking": "cycling",
    "ride": "cycling",
    "bike": "cycling",
    "virtualride": "cycling",
    "ebikeride": "cycling",
    "mountainbikeride": "cycling",
    "gravelride": "cycling",
    "indoorcycling": "cycling",
    "swimming": "swimming",
    "swim": "swimming",
    "lapswimming": "swimming",
    "openwater": "swimming",
    "walking": "walking",
    "walk": "walking",
    "hiking": "hiking",
    "hike": "hiking",
    "strength": "strength",
    "strengthtraining": "strength",
    "weighttraining": "strength",
    "crossfit": "hiit",
    "hiit": "hiit",
    "cardiotraining": "hiit",
    "workout": "hiit",
    "rowing": "rowing",
    "indoorrowing": "rowing",
    "row": "rowing",
    "yoga": "yoga",
    "pilates": "yoga",
    "elliptical": "elliptical",
    "dancing": "dancing",
    "dance": "dancing",
}


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {_key(name): workout_type for name, workout_type in SPORT_TYPES.items()}
_BY_KEY.update({_key(name): name for name in WORKOUT_TYPES})


def workout_type_of(*names: str | None) -> str | None:
    """Return our workout type for the first of ``names`` we know (most specific first)."""
    for name in names:
        if name and (found := _BY_KEY.get(_key(str(name)))):
            return found
    return None


def mapping_table() -> str:
    """Return the mapping as the API guide's Markdown table (a test keeps the two equal)."""
    rows = ["| workout type | file sport names (case, spaces, `-` and `_` ignored) |", "|---|---|"]
    for workout_type in WORKOUT_TYPES:
        names = {name for name, mapped in SPORT_TYPES.items() if mapped == workout_type}
        rows.append(f"| `{workout_type}` | {', '.join(sorted(names | {workout_type}))} |")
    return "\n".join(rows)
