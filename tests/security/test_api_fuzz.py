"""Schemathesis fuzzes the whole public API: no 5xx, every answer as the spec says, nothing
invalid stored (a quick run; ``bench/api_fuzz.py`` is the long one)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.support import fuzz_api
from tests.support import fuzz_records as rules
from tests.support.client import GatewayApi

SEED = 20261128  # a fixed seed: the quick run draws the same cases each time (ids differ)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with fuzz_api.fuzz_stack(tmp_path_factory.mktemp("fuzz-stack")) as running:
        yield running


@pytest.fixture(scope="module")
def target(stack) -> fuzz_api.Target:
    """A user with a goal and a workout, for the targeted checks."""
    return fuzz_api.seed(stack)


@pytest.fixture(scope="module")
def campaign(stack, tmp_path_factory) -> fuzz_api.Campaign:
    return fuzz_api.campaign_on(
        stack,
        tmp_path_factory.mktemp("fuzz"),
        max_examples=8,
        anonymous_examples=3,
        seed_value=SEED,
    )


@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_every_answer_is_documented_and_no_server_error(campaign, who):
    outcome = campaign.runs[who]
    print(
        f"{who}: {outcome.generated} generated, statuses {dict(sorted(outcome.statuses.items()))}"
    )
    assert outcome.operations >= 19, outcome.output[-2000:]
    assert outcome.sent >= 200, outcome.output[-2000:]
    assert outcome.problems() == []
    assert outcome.exit_code == 0, outcome.output[-3000:]


def test_the_fuzzing_user_reached_past_the_ownership_checks(campaign):
    """Without aimed ids every request would stop at 401/403: prove the runs got further."""
    statuses = campaign.runs["user"].statuses
    assert statuses[200] + statuses[201] > statuses[403]
    assert statuses[400] > 0


def test_nothing_invalid_was_stored(campaign):
    print("records after fuzzing:", campaign.records)
    assert campaign.records["users"] >= 2
    assert campaign.invalid == []


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        # Found by the fuzzer: a newline in an id matched only the saga routes (PATCH/DELETE),
        # so GET answered an undocumented 405.
        ("/users/{user}/goals/abc%0A", 404, "goal_not_found"),
        ("/workouts/abc%0Adef", 404, "session_not_found"),
        # "#" and "?" inside an id were forwarded decoded and cut the id short.
        ("/workouts/{workout}%23x", 404, "session_not_found"),
        ("/users/{user}/goals/{goal}%3Fx=1", 404, "goal_not_found"),
        # "$" matched before a final newline: this was routed as /users/register, but without
        # the public-path exemption and without an ownership check. Now it names a user.
        ("/users/register%0A", 403, "forbidden"),
    ],
)
def test_ids_with_control_and_delimiter_characters_are_routed_whole(
    stack, target, path, status, code
):
    api = GatewayApi(stack)
    url = api.user_url + path.format(
        user=target.user_id, goal=target.goal_ids[0], workout=target.session_ids[0]
    )
    answer = api.get(url, target.token)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text


def test_the_record_check_catches_what_breaks_a_rule():
    """The stored-record check can fail: one broken record of each kind is reported."""
    now = dt.datetime.now(dt.UTC)
    user = {
        "id": "u1",
        "username": "ab",  # too short
        "email": "Not-An-Email",
        "password_hash": "x" * 60,
        "weight_kg": 5.0,  # below 20
        "created_at": now,
        "updated_at": now,
    }
    goal = {
        "id": "g1",
        "user_id": "nobody",
        "goal_type": "sleep",
        "workout_type": None,
        "target_value": -1,
        "target_date": "someday",
        "current_progress": float("nan"),
        "status": "active",
    }
    workout = {"_id": "w1", "user_id": "u1", "workout_type": "running", "status": "ended"}
    workout.update(start_time=now, end_time=now - dt.timedelta(minutes=1), weight_kg=70.0)
    workout.update(duration=-1.0, calories_burned=10.0)
    assert len(list(rules._user_rules(user))) == 3
    assert len(list(rules._goal_rules(goal, {"u1"}))) == 5
    assert len(list(rules._session_rules(workout))) == 2
