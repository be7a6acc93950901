"""Archives import as background jobs: a Strava-like export, unsafe archives, a replica killed.

Through a gateway, with two activity replicas sharing the store: a job answered 202 on one may
run on either, and the other finishes it when the first dies.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import time
import zipfile
from collections.abc import Iterator

import psutil
import pytest
import requests

from activity_service.imports.jobs import BATCH
from fitness.imports import MAX_FILE_BYTES
from tests.support import activity_files as files
from tests.support.client import TIMEOUT, GatewayApi
from tests.support.stack import activity_db, gateway_tier, make_replicas, running

# A job rests this long between storing two batches (the default is shorter): long enough that
# the rests outlast everything else a small job does.
REST_SECONDS = 1.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator:
    replicas = [*make_replicas(2), *gateway_tier(1)]
    env = {"FITNESS_IMPORT_JOB_REST_SECONDS": str(REST_SECONDS)}
    with running(tmp_path_factory.mktemp("import-jobs"), replicas, env) as started:
        yield started


def _zip(members: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return archive.getvalue()


def _upload(api: GatewayApi, user_id: str, token: str, name: str, data: bytes):
    return requests.post(
        f"{api.user_url}/users/{user_id}/imports",
        files={"file": (name, data)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT * 3,
    )


def _job(api: GatewayApi, token: str, job_id: str) -> dict:
    answer = api.get(f"{api.user_url}/imports/{job_id}", token)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _finished(api: GatewayApi, token: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (job := _job(api, token, job_id))["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job


def _ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=days)


def test_a_strava_export_imports_in_the_background(api):
    user_id, token = api.new_user()
    gym, hike = _ago(15), _ago(16)
    export = {
        # Strava's header: "Distance" first in the athlete's units, then in metres. Row 3 was
        # entered by hand: no file, the row is the activity; row 4 is no date at all.
        "activities.csv": (
            "Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time,Distance,"
            "Filename,Elapsed Time,Distance,Elevation Gain,Average Heart Rate,Calories\n"
            "1,,Morning,Run,,,activities/1.gpx,,,,,\n"
            f'2,"{gym:%b %d, %Y, %I:%M:%S %p}",Gym,Weight Training,2700,0,,2700,0,,,250\n'
            f'3,"{hike:%b %d, %Y, %I:%M:%S %p}",Hills,Hike,5400,7.50,,5400,"7,500.0",'
            "420,118,\n"
            "4,yesterday,Oops,Run,1800,5,,1800,5000,,,\n"
        ).encode(),
        "activities/1.gpx": files.gpx(_ago(10), 30, sport=None),  # the index says: a run
        "activities/2.tcx": files.tcx(_ago(11), 40),
        "activities/3.fit.gz": gzip.compress(files.fit(_ago(12), 25)),
        "activities/4.fit": files.fit(_ago(13), 20)[:-300],  # cut short
        "../../evil/5.gpx": files.gpx(_ago(14), 15),
        "media/photo.jpg": b"\xff\xd8 not an activity",
        "profile.csv": b"Athlete ID,Email\n1,a@b\n",
    }
    archive = _zip(export)
    queued = _upload(api, user_id, token, "export_123.zip", archive)
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert (job["state"], job["progress"]) == ("queued", {"done": 0, "total": 5})
    assert job["status_url"] == f"/imports/{job['import_id']}"

    done = _finished(api, token, job["import_id"])
    assert (done["state"], done["progress"]["done"]) == ("done", 5)
    assert (done["imported"], done["duplicates"], done["rejected"]) == (6, 0, 2)
    assert sorted(r["where"] for r in done["rejections"]) == [
        "activities.csv row 5",
        "activities/4.fit",
    ]
    workouts = api.get(f"{api.user_url}/users/{user_id}/workouts", token).json()["workouts"]
    assert sorted(w["workout_type"] for w in workouts) == [
        "cycling",
        "hiking",
        "running",
        "running",
        "running",
        "strength",
    ]
    by_type = {w["workout_type"]: w for w in workouts}
    assert (by_type["strength"]["duration"], by_type["strength"]["calories_burned"]) == (45, 250)
    assert by_type["strength"]["start_time"] == gym.isoformat()
    hiked = by_type["hiking"]
    assert (hiked["distance_km"], hiked["elevation_gain_m"]) == (7.5, 420)
    assert hiked["average_heart_rate"] == 118
    assert (
        api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()["total_workouts"] == 6
    )

    # The same archive again is the same job; the same activity in another archive, a duplicate.
    again = _upload(api, user_id, token, "export_123.zip", archive)
    assert (again.status_code, again.json()["import_id"]) == (200, job["import_id"])
    other = _upload(api, user_id, token, "b.zip", _zip({"x/1.gpx": export["../../evil/5.gpx"]}))
    assert other.status_code == 202, other.text
    repeat = _finished(api, token, other.json()["import_id"])
    assert (repeat["imported"], repeat["duplicates"]) == (0, 1)
    # Someone else's job is not theirs to read.
    _, intruder = api.new_user()
    assert api.get(f"{api.user_url}/imports/{job['import_id']}", intruder).status_code == 403


def test_an_archive_larger_than_a_file_may_be_streams_through(api):
    """A Strava export with its media is far over 16 MiB: it is spooled, stored and read in
    pieces (the gateway and the service never hold it whole), and its activities import."""
    user_id, token = api.new_user()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for i in range(3):
            zipped.writestr(f"activities/{i}.gpx", files.gpx(_ago(30 + i), 20))
        video = os.urandom(24 * 2**20)  # does not compress
        zipped.writestr("media/ride.mp4", video, compress_type=zipfile.ZIP_STORED)
    data = archive.getvalue()
    assert len(data) > MAX_FILE_BYTES + 8 * 2**20
    queued = _upload(api, user_id, token, "export_big.zip", data)
    assert queued.status_code == 202, queued.text
    done = _finished(api, token, queued.json()["import_id"])
    assert (done["state"], done["imported"], done["rejected"]) == ("done", 3, 0), done
    stats = api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == 3


def test_unsafe_or_empty_archives_are_refused_or_their_bad_members_rejected(api):
    user_id, token = api.new_user()
    not_a_zip = _upload(api, user_id, token, "x.zip", b"PK\x03\x04 but nothing more")
    assert not_a_zip.status_code == 400 and not_a_zip.json()["error"]["code"] == "unreadable_file"
    nothing = _upload(api, user_id, token, "photos.zip", _zip({"a.jpg": b"jpg"}))
    assert nothing.status_code == 400
    assert nothing.json()["error"]["code"] == "nothing_imported", nothing.text

    bomb = {
        "bomb.gpx": b"<gpx>" + b" " * (40 * 2**20) + b"</gpx>",
        "ok.gpx": files.gpx(_ago(3), 20),
    }
    queued = _upload(api, user_id, token, "bomb.zip", _zip(bomb))
    assert queued.status_code == 202, queued.text
    done = _finished(api, token, queued.json()["import_id"])
    assert (done["imported"], done["rejected"]) == (1, 1), done
    assert "times its packed size" in done["rejections"][0]["reason"]


def test_a_job_rests_between_storing_two_batches(stack, api):
    """Its store work comes in bursts, with room for other users' requests between them: its
    small files are read at once, so each rest is whole."""
    user_id, token = api.new_user()
    batches = 6
    count = batches * BATCH
    archive = _zip({f"a/{i}.gpx": files.gpx(_ago(20 + i), 20, hr=False) for i in range(count)})
    queued = _upload(api, user_id, token, "history.zip", archive)
    assert queued.status_code == 202, queued.text
    done = _finished(api, token, queued.json()["import_id"])
    assert done["imported"] == count, done
    took = dt.datetime.fromisoformat(done["finished_at"]) - dt.datetime.fromisoformat(
        done["created_at"]
    )
    assert took >= dt.timedelta(seconds=(batches - 1) * REST_SECONDS)


def test_a_job_goes_on_elsewhere_when_its_replica_is_killed(stack, api):
    user_id, token = api.new_user()
    count = 160
    archive = _zip({f"a/{i}.gpx": files.gpx(_ago(20 + i), 20, hr=False) for i in range(count)})
    queued = _upload(api, user_id, token, "history.zip", archive)
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["import_id"]
    jobs = activity_db(stack)["import_jobs"]
    deadline = time.monotonic() + 60
    while not ((doc := jobs.find_one({"_id": job_id})) and doc["done"] >= 20):
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)
    assert doc["done"] < count, "the job ended before the kill: make the archive larger"
    owner_pid = int(doc["lease_owner"].split(":")[1])
    (victim,) = [
        r.name
        for r in stack.replicas_of("activity_service")
        if owner_pid in {p.pid for p in psutil.Process(stack.processes[r.name].pid).children(True)}
    ]
    stack.kill(victim)

    done = _finished(api, token, job_id, timeout=120)
    assert done["state"] == "done" and done["rejected"] == 0, done
    assert done["imported"] + done["duplicates"] == count  # a batch read twice: duplicates
    stats = api.get(f"{api.user_url}/users/{user_id}/statistics", token).json()
    assert stats["total_workouts"] == count  # every activity once: none lost, none twice
    assert activity_db(stack)["sessions"].count_documents({"user_id": user_id}) == count
