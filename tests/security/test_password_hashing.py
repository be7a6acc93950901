"""Password hashing: OWASP's Argon2id, upgraded at login, on a pool that sheds a burst.

Past the pool's bound a login is refused at once with 503 and Retry-After, and the gateway
neither counts that against the replica nor gives up while another replica has room. (What a
burst of logins does to other requests is measured by ``bench/login_burst.py``.)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from argon2 import PasswordHasher

from fitness.password_hashing import OWASP_ARGON2ID
from tests.support.client import GatewayApi
from tests.support.stack import gateway_tier, make_replicas, running


@pytest.fixture(scope="module")
def shedding_stack(tmp_path_factory) -> Iterator:
    """One user replica whose pool holds one hash and no queue: a burst must be shed."""
    replicas = [*make_replicas(1), *gateway_tier(1)]
    env = {"FITNESS_HASHING_WORKERS": "1", "FITNESS_HASHING_QUEUE": "0"}
    with running(tmp_path_factory.mktemp("shedding"), replicas, env) as started:
        yield started


def _stored_hash(stack, user_id: str) -> str:
    with sqlite3.connect(stack.data_dir / "users.db") as db:
        return db.execute("SELECT password_hash FROM users WHERE id = ?", (user_id,)).fetchone()[0]


def test_new_hashes_use_owasp_argon2id_and_old_ones_are_upgraded_at_login(stack):
    api = GatewayApi(stack)
    user = api.register()
    stored = _stored_hash(stack, user["user_id"])
    expected = "$argon2id$v=19$m={memory_cost},t={time_cost},p={parallelism}$"
    assert stored.startswith(expected.format(**OWASP_ARGON2ID))
    # An account from before: argon2-cffi's old defaults (64 MiB, 3 passes, 4 lanes).
    old = PasswordHasher().hash(user["password"])
    assert old.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    with sqlite3.connect(stack.data_dir / "users.db") as db:
        db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (old, user["user_id"]))
    api.login(user["email"], user["password"])
    upgraded = _stored_hash(stack, user["user_id"])
    assert upgraded != old and upgraded.startswith(expected.format(**OWASP_ARGON2ID))
    api.login(user["email"], user["password"])  # the new hash verifies too
    wrong = api.post(f"{api.user_url}/users/login", {"email": user["email"], "password": "no"})
    assert wrong.status_code == 401
    assert _stored_hash(stack, user["user_id"]) == upgraded


def test_past_the_bound_a_login_is_shed_with_retry_after_and_nothing_else_fails(shedding_stack):
    api = GatewayApi(shedding_stack)
    user = api.register()
    body = {"email": user["email"], "password": user["password"]}
    barrier = threading.Barrier(20)
    before = _user_replica_status(api)

    def login() -> requests.Response:
        barrier.wait()
        return api.post(f"{api.user_url}/users/login", body)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: login(), range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 503}, statuses
    shed = [a for a in answers if a.status_code == 503]
    for answer in shed:
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["error"]["code"] == "busy"
    # The replica is not marked down for shedding: the next login goes through at once.
    assert api.post(f"{api.user_url}/users/login", body).status_code == 200
    after = _user_replica_status(api)
    assert after["healthy"] and after["breaker"] == "closed", after
    # Nothing was recorded against it (a health check before the service was up may have been).
    assert after["last_error_at"] == before["last_error_at"], (before, after)


def _user_replica_status(api: GatewayApi) -> dict:
    status = requests.get(f"{api.user_url}/status", timeout=5).json()
    (replica,) = status["upstreams"]["user_service"]["replicas"]
    return replica
