"""Who may call what: every protected operation of the OpenAPI document, with every bad token.

The operations come from ``gateway/openapi.json``, so a new route is covered as soon as it is
documented. A production process refuses to start without a strong token secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from fitness import mtls
from tests.support import REPO_ROOT
from tests.support.client import wait_until
from tests.support.hostile import (
    SECRET,
    SPEC,
    authorization_matrix,
    foreign_ids_under_own_path,
    make_victim,
    new_user,
    protected_operations,
    token_kinds,
)
from tests.support.stack import free_port

ROOT = REPO_ROOT
UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_it_reads_every_protected_operation_from_the_spec():
    operations = {(op.method, op.path) for op in protected_operations(SPEC)}
    assert ("GET", "/users/{user_id}/statistics") in operations
    assert ("GET", "/sagas/{saga_id}") in operations
    assert not {("POST", "/users/login"), ("POST", "/users/register")} & operations


def test_it_refuses_every_bad_token_on_every_protected_operation(gateway):
    tally = authorization_matrix(gateway, SPEC)
    assert tally.sent == len(protected_operations(SPEC)) * 6
    assert (tally.failed_other, tally.lost) == (0, 0), "\n".join(tally.problems)


def test_it_hides_another_users_goal_named_under_your_own_path(gateway):
    tally = foreign_ids_under_own_path(gateway)
    assert (tally.sent, tally.failed_other, tally.lost) == (3, 0, 0), "\n".join(tally.problems)


def test_it_refuses_bad_tokens_before_opening_a_live_socket(gateway):
    victim, attacker = make_victim(gateway), new_user(gateway)
    for kind, (token, _expected) in token_kinds(victim, attacker).items():
        if kind == "another user's token":
            continue
        path = f"/ws?token={token}" if token else "/ws"
        answer = gateway.send("GET", path, headers=UPGRADE)
        assert answer.status == 401, kind
        assert answer.is_json_error(), kind


def _serve(package: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen:
    port = free_port()
    command = [sys.executable, "-m", package, "serve", "--http-port", str(port)]
    command += ["--grpc-port", str(free_port())]
    full_env = {k: v for k, v in os.environ.items() if k != "FITNESS_JWT_SECRET"}
    full_env.update(FITNESS_DATA_DIR=str(tmp_path), FITNESS_ENV="production", **env)
    process = subprocess.Popen(
        command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
    )
    process.port = port  # type: ignore[attr-defined]
    return process


@pytest.mark.parametrize(
    ("package", "secret", "reason"),
    [
        ("gateway", None, "must be set"),
        ("gateway", "", "must be set"),
        ("gateway", "changeme", "too weak"),
        ("gateway", "a" * 64, "too weak"),
        ("gateway", "short-but-random-Xq9", "too weak"),
        ("user_service", None, "must be set"),
        ("activity_service", "changeme", "too weak"),
    ],
)
def test_it_refuses_to_start_in_production_without_a_strong_secret(
    tmp_path, package, secret, reason
):
    env = {} if secret is None else {"FITNESS_JWT_SECRET": secret}
    process = _serve(package, tmp_path, env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    message = output.decode()
    assert "FITNESS_JWT_SECRET" in message and reason in message
    assert "Traceback" not in message  # one plain line, not a worker boot failure


def test_it_starts_in_production_with_a_strong_secret(tmp_path):
    mtls.ensure_material(tmp_path / "tls")  # production makes none: compose's tls-init does
    env = {"FITNESS_JWT_SECRET": SECRET, "FITNESS_TLS_DIR": str(tmp_path / "tls")}
    process = _serve("gateway", tmp_path, env)
    try:
        url = f"http://127.0.0.1:{process.port}/status"  # type: ignore[attr-defined]
        assert wait_until(lambda: _answers(url), timeout=60)
        assert process.poll() is None
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
