"""Importing workout files through a gateway: each format, duplicates, bad rows, hostile files.

The files are made by ``activity_files`` (gpxpy, fit-tool, TCX text) with a point every second.
"""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from fit_tool.profile.profile_type import Sport, SubSport

from activity_service.imports.sports import mapping_table
from fitness.imports import MAX_FILE_BYTES, MAX_UPLOAD_BYTES
from fitness.workouts import WORKOUT_METS
from tests.support import REPO_ROOT
from tests.support import activity_files as files
from tests.support.client import TIMEOUT, GatewayApi


def _ago(**delta) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(**delta)


def _import(api: GatewayApi, user_id: str, token: str, name: str, data: bytes, **form):
    return requests.post(
        f"{api.user_url}/users/{user_id}/imports",
        files={"file": (name, data)},
        data=form,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT * 4,
    )


def _workouts(api: GatewayApi, user_id: str, token: str) -> list[dict]:
    page = api.get(f"{api.user_url}/users/{user_id}/workouts?limit=100", token).json()
    return page["workouts"]


def _statistics(api: GatewayApi, user_id: str, token: str) -> dict:
    return api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()


def _imported(response: requests.Response, count: int) -> dict:
    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["imported"] == count, summary
    return summary


def test_each_format_becomes_a_workout_that_counts(api):
    user_id, token = api.new_user(weight_kg=70)
    goal = {"goal_type": "workout_count", "target_value": 1, "target_date": "2099-01-01"}
    assert api.post(f"{api.user_url}/users/{user_id}/goals", goal, token).status_code == 201

    _imported(_import(api, user_id, token, "run.gpx", files.gpx(_ago(days=2), 30)), 1)
    _imported(_import(api, user_id, token, "ride.tcx", files.tcx(_ago(days=3), 20)), 1)
    # Recorded just now, after the goal: it reaches the goal, as a live workout would. (FIT
    # times are whole seconds: the goal must be more than a second old when it ends.)
    time.sleep(1.5)
    fit = gzip.compress(files.fit(_ago(minutes=25), 25, calories=410))
    _imported(_import(api, user_id, token, "watch.fit.gz", fit), 1)
    lifts = files.fit(
        _ago(days=4), 40, Sport.TRAINING, SubSport.STRENGTH_TRAINING, sets=((10, 60), (8, 70))
    )
    _imported(_import(api, user_id, token, "gym.fit", lifts), 1)

    by_type = {w["workout_type"]: w for w in _workouts(api, user_id, token)}
    assert set(by_type) == {"running", "cycling", "strength"}
    assert all(w["source"] == "import" and w["status"] == "ended" for w in by_type.values())
    ride = by_type["cycling"]
    assert (ride["duration"], ride["calories_burned"], ride["distance_km"]) == (20.0, 300.0, 3.36)
    assert ride["average_heart_rate"] == 134 and ride["elevation_gain_m"] > 0
    assert [(s["reps"], s["weight_kg"]) for s in by_type["strength"]["sets"]] == [(10, 60), (8, 70)]
    runs = [w for w in _workouts(api, user_id, token) if w["workout_type"] == "running"]
    gpx_run = next(w for w in runs if w["duration"] == 30.0)
    assert gpx_run["calories_burned"] == round(WORKOUT_METS["running"] * 70 * 0.5, 1)  # METs
    assert 5.0 < gpx_run["distance_km"] < 5.1

    stats = _statistics(api, user_id, token)
    assert (stats["total_workouts"], stats["total_duration"]) == (4, 30 + 20 + 25 + 40)
    goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
    assert goals[0]["current_progress"] == 1 and goals[0]["achieved"] is True


def test_csv_rows_import_and_bad_rows_are_listed_while_the_rest_imports(api):
    user_id, token = api.new_user()
    day = _ago(days=10).date()
    table = "\n".join(
        [
            "Date,Start Time,Duration,Type,Distance,Calories",
            f"{day},07:30,45,Running,8.2,520",
            f"{day - dt.timedelta(days=1)},,30,yoga,,",
            f"{day - dt.timedelta(days=2)},18:00,40,chess,,",
            f"{day - dt.timedelta(days=3)},18:00,-5,walking,,",
            f"31/12/{day.year},18:00,20,walking,,",
            f"{day - dt.timedelta(days=4)},18:00,0.5,walking,,",
            f"{dt.date.today() + dt.timedelta(days=3)},08:00,30,walking,,",
        ]
    )
    summary = _imported(_import(api, user_id, token, "log.csv", table.encode()), 2)
    assert summary["rejected"] == 5
    reasons = {r["where"]: r["reason"] for r in summary["rejections"]}
    assert set(reasons) == {f"log.csv row {n}" for n in (4, 5, 6, 7, 8)}, reasons
    assert "chess" in reasons["log.csv row 4"] and "YYYY-MM-DD" in reasons["log.csv row 6"]
    assert "at least 1 minute" in reasons["log.csv row 7"]
    run = next(w for w in _workouts(api, user_id, token) if w["workout_type"] == "running")
    assert run["start_time"] == f"{day}T07:30:00+00:00"
    assert (run["distance_km"], run["calories_burned"]) == (8.2, 520.0)


def test_a_strength_log_becomes_one_workout_per_date_with_its_sets(api):
    user_id, token = api.new_user()
    monday, tuesday = _ago(days=9).date(), _ago(days=8).date()
    log = "\n".join(
        [
            "Date,Workout Type,Exercise,Muscle Group,Set Number,Reps,Weight (lbs)",
            f"{monday},Push,Bench Press,Chest,1,8,135",
            f"{monday},Push,Bench Press,Chest,2,6,155",
            f"{monday},Push,Dips,Triceps,1,12,0",
            f"{tuesday},Legs,Squat,Legs,1,5,225",
            f"{tuesday},Legs,Squat,Legs,2,zero,225",
        ]
    )
    summary = _imported(_import(api, user_id, token, "strength_log.csv", log.encode()), 2)
    assert summary["rejections"] == [
        {
            "where": "strength_log.csv row 6",
            "reason": "reps 'zero' is not a whole number from 1 to 1000",
        }
    ]
    first, second = sorted(_workouts(api, user_id, token), key=lambda w: w["start_time"])
    assert (first["workout_type"], first["duration"], len(first["sets"])) == ("strength", 9.0, 3)
    assert first["sets"][0] == {
        "exercise": "Bench Press",
        "muscle_group": "Chest",
        "reps": 8,
        "weight_kg": round(135 * 0.45359237, 2),
    }
    assert first["sets"][2]["weight_kg"] == 0  # a bodyweight exercise
    assert [s["exercise"] for s in second["sets"]] == ["Squat"]


def test_the_same_activity_again_or_in_another_format_is_not_imported_twice(api):
    user_id, token = api.new_user()
    start = _ago(days=5)
    gpx = files.gpx(start, 30, sport="running")
    _imported(_import(api, user_id, token, "run.gpx", gpx), 1)
    again = _import(api, user_id, token, "run.gpx", gpx)
    assert again.status_code == 200, again.text
    assert (again.json()["imported"], again.json()["duplicates"]) == (0, 1)
    # The same run from the watch's FIT file: same type, same start.
    twin = _import(api, user_id, token, "run.fit", files.fit(start, 30))
    assert (twin.status_code, twin.json()["duplicates"]) == (200, 1), twin.text
    # A GPX without a sport: the form names it; a different start is a different workout.
    other = files.gpx(start - dt.timedelta(days=1), 30, sport=None)
    _imported(_import(api, user_id, token, "walk.gpx", other, workout_type="walking"), 1)
    assert _statistics(api, user_id, token)["total_workouts"] == 2


def _billion_laughs() -> bytes:
    """The classic: ten entities each ten times the last, 10^9 "lol"s from under 1 kB."""
    entities = ['<!ENTITY l0 "lol">']
    entities += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    return f'<?xml version="1.0"?><!DOCTYPE gpx [{"".join(entities)}]><gpx>&l9;</gpx>'.encode()


def _hostile_files() -> list[tuple[str, str, bytes, int, str]]:
    """(case, file name, bytes, status, error code)."""
    start = _ago(days=1)
    external = (
        b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<gpx><trk><name>&x;</name></trk></gpx>"
    )
    bomb = gzip.compress(b"<gpx>" + b" " * (80 * 2**20) + b"</gpx>", compresslevel=9)
    cut_gzip = gzip.compress(files.gpx(start, 5))[:-50]
    untimed = files.gpx(start, 5).replace(b"<time>", b"<desc>").replace(b"</time>", b"</desc>")
    return [
        ("entity expansion", "laughs.gpx", _billion_laughs(), 400, "unsafe_file"),
        ("external entity", "passwd.tcx", external, 400, "unsafe_file"),
        ("gzip bomb", "bomb.gpx.gz", bomb, 400, "unsafe_file"),
        ("truncated FIT", "cut.fit", files.fit(start, 20)[:-300], 400, "unreadable_file"),
        ("cut gzip", "cut.gpx.gz", cut_gzip, 400, "unreadable_file"),
        ("not XML", "notes.gpx", b"just some text", 400, "unreadable_file"),
        ("not a CSV we know", "bank.csv", b"iban,amount\nX,1\n", 400, "unreadable_file"),
        ("an executable", "setup.exe", b"MZ\x90\x00", 400, "unsupported_format"),
        ("no times", "plan.gpx", untimed, 400, "nothing_imported"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "name", "data", "status", "code"),
    _hostile_files(),
    ids=[c[0] for c in _hostile_files()],
)
def test_a_hostile_or_broken_file_gets_a_clear_4xx_and_stores_nothing(
    api, case, name, data, status, code
):
    user_id, token = api.new_user()
    refused = _import(api, user_id, token, name, data)
    assert refused.status_code == status, refused.text[:500]
    assert refused.json()["error"]["code"] == code
    assert _workouts(api, user_id, token) == []
    assert _statistics(api, user_id, token)["total_workouts"] == 0


def test_an_upload_over_the_limit_is_refused_before_it_is_read(api):
    """The gateway answers 413 from the announced length: it reads none of the 1 GiB."""
    user_id, token = api.new_user()
    parts = urlsplit(api.user_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", f"/users/{user_id}/imports")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "request_entity_too_large"
    finally:
        conn.close()


def test_one_file_over_16_mib_is_refused_and_one_under_it_is_read(api):
    """Only an archive may be larger than MAX_FILE_BYTES."""
    user_id, token = api.new_user()
    over = _import(api, user_id, token, "big.gpx", b"<gpx>" + b" " * MAX_FILE_BYTES)
    assert over.status_code == 413, over.text
    assert over.json()["error"]["code"] == "file_too_large"
    assert "zip archive" in over.json()["error"]["fields"]["file"]
    # Just under the limit is read: an unreadable file, not a refused upload.
    near = _import(api, user_id, token, "big.gpx", b"<gpx>" + b" " * (MAX_FILE_BYTES - 1024))
    assert near.status_code == 400 and near.json()["error"]["code"] == "unreadable_file", near.text
    assert _workouts(api, user_id, token) == []


def test_a_bad_form_is_refused_naming_its_fields(api):
    user_id, token = api.new_user()
    url = f"{api.user_url}/users/{user_id}/imports"
    auth = {"Authorization": f"Bearer {token}"}
    no_file = requests.post(url, data={"workout_type": "running"}, headers=auth, timeout=TIMEOUT)
    assert no_file.status_code == 400 and "file" in no_file.json()["error"]["fields"]
    gpx = files.gpx(_ago(days=1), 10)
    bad_type = _import(api, user_id, token, "a.gpx", gpx, workout_type="chess", mood="good")
    assert bad_type.status_code == 400
    assert set(bad_type.json()["error"]["fields"]) == {"workout_type", "mood"}
    # A name with a path in it is only a name: nothing is written anywhere by it.
    traversal = _import(api, user_id, token, "../../etc/cron.d/x.gpx", gpx)
    assert traversal.status_code == 201, traversal.text
    assert _workouts(api, user_id, token)[0]["source"] == "import"


def test_nobody_imports_into_someone_elses_account(api):
    owner, owner_token = api.new_user()
    _, intruder_token = api.new_user()
    refused = _import(api, owner, intruder_token, "run.gpx", files.gpx(_ago(days=1), 10))
    assert refused.status_code == 403, refused.text
    assert _workouts(api, owner, owner_token) == []


def test_the_readme_shows_the_sport_mapping_the_code_applies():
    guide = (REPO_ROOT / "docs" / "api.md").read_text()
    assert mapping_table() in guide, "docs/api.md: paste sports.mapping_table() under the imports"
