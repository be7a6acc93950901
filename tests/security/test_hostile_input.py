"""Hostile input through a gateway: injections, oversized bodies, odd ids in paths.

Each probe (``hostile_input.py``, shared with ``bench/security_probe.py``) also looks into the
stores afterwards: nothing invalid may have been stored. Login brute force is covered by
``test_gateway_shared_state.py`` (per account and per address, across gateways).
"""

from __future__ import annotations

from tests.support.hostile import SPEC, new_user
from tests.support.hostile_input import (
    SQL_STRINGS,
    nosql_injection,
    oversized_bodies,
    path_traversal,
    sql_injection,
)


def _clean(tally) -> None:
    assert tally.sent > 0
    assert (tally.failed_other, tally.lost) == (0, 0), "\n".join(tally.problems)


def test_it_refuses_mongodb_operators_in_every_field_and_stores_nothing(gateway):
    _clean(nosql_injection(gateway))


def test_it_treats_sql_in_every_field_as_data_or_refuses_it(gateway):
    # Four strings keep this quick (each account costs a password hash); the bench sends all.
    _clean(sql_injection(gateway, SQL_STRINGS[:4]))


def test_it_does_not_log_in_with_sql_for_a_password(gateway):
    me = new_user(gateway)
    for password in ("' OR '1'='1", "' OR 1=1 --"):
        body = {"email": me.email, "password": password}
        answer = gateway.send("POST", "/users/login", body=body)
        assert answer.status == 401
        assert "token" not in answer.json()


def test_it_answers_413_to_large_chunked_and_deeply_nested_bodies(gateway):
    _clean(oversized_bodies(gateway, SPEC))


def test_it_answers_odd_ids_and_traversal_with_a_json_4xx(gateway):
    _clean(path_traversal(gateway))


def test_it_keeps_an_encoded_question_mark_inside_the_id(gateway):
    me = new_user(gateway)
    goal = {"goal_type": "workout_count", "target_value": 5, "target_date": "2099-12-31"}
    goal_id = gateway.send("POST", f"/users/{me.user_id}/goals", me.token, goal).json()["goal_id"]
    assert gateway.send("GET", f"/users/{me.user_id}/goals/{goal_id}", me.token).status == 200
    # Before: the gateway forwarded the decoded "?" and the service answered the real goal.
    answer = gateway.send("GET", f"/users/{me.user_id}/goals/{goal_id}%3Fx", me.token)
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "goal_not_found"
