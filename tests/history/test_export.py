"""Exporting everything through a gateway: what the zip holds, that it imports back, the limit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import requests

from tests.support import activity_files as files
from tests.support.client import TIMEOUT, GatewayApi, minutes_ago


def _export(api: GatewayApi, user_id: str, token: str) -> requests.Response:
    return api.get(f"{api.user_url}/users/{user_id}/export", token)


def _statistics(api: GatewayApi, user_id: str, token: str) -> dict:
    return api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()


def _history(api: GatewayApi) -> tuple[str, str]:
    """A user with a goal and every kind of workout: live, too short, logged with sets, imported."""
    user_id, token = api.new_user(weight_kg=81.5)
    goal = {"goal_type": "active_minutes", "target_value": 500, "target_date": "2099-01-01"}
    assert api.post(f"{api.user_url}/users/{user_id}/goals", goal, token).status_code == 201
    api.end(api.start(user_id, token, "cycling")["session_id"], token)
    api.end(api.start(user_id, token, "yoga", start_time=None)["session_id"], token)  # discarded
    sets = [
        {"exercise": '=HYPERLINK("http://evil")', "reps": 5, "weight_kg": 80},
        {"exercise": "Deadlift", "muscle_group": "Back", "reps": 3, "weight_kg": 140.5},
    ]
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=12, seconds=17.25)).isoformat()
    body = {"workout_type": "strength", "start_time": start, "duration": 52.5, "sets": sets}
    logged = api.post(f"{api.user_url}/users/{user_id}/workouts", body, token)
    assert logged.status_code == 201, logged.text
    gpx = files.gpx(dt.datetime.now(dt.UTC) - dt.timedelta(days=30), 47)
    imported = requests.post(
        f"{api.user_url}/users/{user_id}/imports",
        files={"file": ("run.gpx", gpx)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert imported.status_code == 201, imported.text
    api.start(user_id, token, "walking", start_time=minutes_ago(3))  # still going
    return user_id, token


def test_the_export_holds_everything_and_its_workouts_import_into_another_account(api):
    user_id, token = _history(api)
    answer = _export(api, user_id, token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert answer.headers["Content-Disposition"].startswith("attachment; filename=")
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = {
        "README.txt",
        "account.json",
        "goals.json",
        "workouts.json",
        "workouts.csv",
        "sets.csv",
    }
    assert set(archive.namelist()) == names

    account = json.loads(archive.read("account.json"))
    assert account["user_id"] == user_id and account["weight_kg"] == 81.5
    assert not any("password" in key for key in account)
    (goal,) = json.loads(archive.read("goals.json"))
    assert goal["goal_type"] == "active_minutes" and goal["current_progress"] > 0
    workouts = json.loads(archive.read("workouts.json"))
    assert sorted(w["status"] for w in workouts) == [
        "active",
        "discarded",
        "ended",
        "ended",
        "ended",
    ]
    rows = list(csv.DictReader(io.StringIO(archive.read("workouts.csv").decode())))
    assert len(rows) == 4  # the finished ones
    sets = list(csv.DictReader(io.StringIO(archive.read("sets.csv").decode())))
    assert [s["exercise"] for s in sets] == ['\'=HYPERLINK("http://evil")', "Deadlift"]
    assert (sets[1]["muscle_group"], sets[1]["weight"], sets[1]["set_number"]) == (
        "Back",
        "140.5",
        "2",
    )

    other_id, other_token = api.new_user()
    again = requests.post(
        f"{api.user_url}/users/{other_id}/imports",
        files={"file": ("workouts.csv", archive.read("workouts.csv"))},
        headers={"Authorization": f"Bearer {other_token}"},
        timeout=TIMEOUT,
    )
    assert again.status_code == 201, again.text
    assert again.json()["imported"] == 3 and again.json()["rejected"] == 1  # too short again
    assert _statistics(api, other_id, other_token) == _statistics(api, user_id, token)


def test_one_export_an_hour_and_only_your_own(api):
    user_id, token = api.new_user()
    assert _export(api, user_id, token).status_code == 200
    again = _export(api, user_id, token)
    assert again.status_code == 429, again.text
    assert again.json()["error"]["code"] == "too_many_exports"
    assert 3500 < int(again.headers["Retry-After"]) <= 3601
    other_id, other_token = api.new_user()
    assert _export(api, user_id, other_token).status_code == 403
    assert _export(api, other_id, other_token).status_code == 200
