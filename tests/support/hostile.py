"""Hostile-request probes shared by the security tests and ``bench/security_probe.py``.

Each probe sends hostile requests through a gateway of a running stack and returns a
:class:`Tally`: ``succeeded`` counts requests that were correctly refused (or, for input that is
plain data, handled harmlessly), ``failed_other`` answers with the wrong status or shape, and
``lost`` leaks of another user's data or invalid data found stored afterwards.
"""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import sqlite3
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from activity_service.store import ActivityStore
from fitness.auth import ISSUER
from gateway.docs import SPEC_FILE
from tests.support import activity_files

TIMEOUT = 15
# The API's own document: every probe derives its operations from it.
SPEC = json.loads(SPEC_FILE.read_text())
PASSWORD = "correct-horse-battery"
SECRET = "s3cure-" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
UPLOAD_LIMIT = 24 * 2**20
"""A stack under probe takes uploads this large (not the default 1 GiB): an oversized body is
sent whole, and one over 1 GiB would take the probe a minute."""
# What a stack under probe needs: a known secret (to forge tokens), per-probe client
# addresses, and an upload limit a probe can pass.
STACK_ENV = {
    "FITNESS_JWT_SECRET": SECRET,
    "FITNESS_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
    "FITNESS_TRUSTED_PROXY_HOPS": "1",
    "FITNESS_LOG_LEVEL": "INFO",
}


@dataclass
class Tally:
    """What one probe sent and how the gateway answered."""

    area: str
    sent: int = 0
    succeeded: int = 0
    failed_other: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        """Count one hostile request; ``ok`` means it was refused or harmless."""
        self.sent += 1
        if ok:
            self.succeeded += 1
        else:
            self.failed_other += 1
            self.problems.append(what)

    def lose(self, what: str) -> None:
        """Record a leak or stored invalid data."""
        self.lost += 1
        self.problems.append("LOST: " + what)


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def is_json_error(self) -> bool:
        body = self.json()
        return isinstance(body, dict) and isinstance(body.get("error"), dict)


@dataclass
class Target:
    """A gateway to probe, and the data directory of its stack (to look into the stores)."""

    url: str
    data_dir: Path
    mongo_url: str

    def send(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request with ``path`` exactly as given (no client-side normalising)."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
        try:
            conn.request(method, path, body=raw, headers=sent)
            response = conn.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            conn.close()

    def users_db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data_dir / 'users.db'}?mode=ro", uri=True, timeout=10)

    def count_rows(self, table: str) -> int:
        with self.users_db() as db:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def activity(self) -> ActivityStore:
        return ActivityStore(self.mongo_url)


@dataclass
class User:
    user_id: str
    username: str
    email: str
    token: str
    password: str = PASSWORD


def new_user(target: Target, address: str = "10.9.0.1") -> User:
    """Register and log in a fresh user through the gateway."""
    name = "u" + uuid.uuid4().hex[:12]
    email = f"{name}@example.com"
    body = {"username": name, "email": email, "password": PASSWORD}
    answer = target.send("POST", "/users/register", body=body)
    assert answer.status == 201, answer.text
    login = target.send(
        "POST",
        "/users/login",
        body={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": address},
    )
    assert login.status == 200, login.text
    return User(answer.json()["user_id"], name, email, login.json()["token"])


# --- authorization matrix ---------------------------------------------------------------------


@dataclass
class Operation:
    method: str
    path: str  # templated, e.g. /users/{user_id}/goals/{goal_id}
    responses: set[str]
    example: Any


def protected_operations(spec: dict[str, Any]) -> list[Operation]:
    """Return every operation of the OpenAPI document that needs a token."""
    default = spec.get("security", [])
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            if op.get("security", default) == []:
                continue
            content = (op.get("requestBody") or {}).get("content", {})
            example = content.get("application/json", {}).get("example")
            found.append(Operation(method.upper(), path, set(op["responses"]), example))
    return found


@dataclass
class Victim:
    """A user with one of everything: a goal, an ended workout, a saga."""

    user: User
    ids: dict[str, str]

    def secrets(self) -> list[str]:
        return [self.user.email, self.user.username, *self.ids.values()]


def make_victim(target: Target) -> Victim:
    """Register a user and give them a goal (through a saga) and an ended workout."""
    user = new_user(target, "10.9.0.2")
    goal = {"goal_type": "workout_count", "target_value": 5, "target_date": "2099-12-31"}
    created = target.send("POST", f"/users/{user.user_id}/goals", user.token, goal)
    assert created.status == 201, created.text
    start = {"user_id": user.user_id, "workout_type": "running"}
    session = target.send("POST", "/workouts/start", user.token, start)
    assert session.status == 201, session.text
    session_id = session.json()["session_id"]
    ended = target.send("POST", f"/workouts/{session_id}/end", user.token, {})
    assert ended.status == 200, ended.text
    ids = {
        "user_id": user.user_id,
        "goal_id": created.json()["goal_id"],
        "session_id": session_id,
        "saga_id": created.headers["X-Saga-ID"],
        "import_id": _imported_archive(target, user),
    }
    return Victim(user, ids)


def _imported_archive(target: Target, user: User) -> str:
    """Import a one-file archive for ``user`` and wait for its job; return the job's id."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        zipped.writestr("activities/1.gpx", activity_files.gpx(start, 5))
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + archive.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    path = f"/users/{user.user_id}/imports"
    queued = target.send("POST", path, user.token, raw=body, headers=headers)
    assert queued.status == 202, queued.text
    job_id = queued.json()["import_id"]
    deadline = time.monotonic() + 30
    while target.send("GET", f"/imports/{job_id}", user.token).json()["state"] != "done":
        assert time.monotonic() < deadline, "the victim's import job did not finish"
        time.sleep(0.2)
    return job_id


def snapshot(target: Target, victim: Victim) -> list[Any]:
    """Return everything the victim can read about themselves."""
    user_id, token = victim.user.user_id, victim.user.token
    paths = [
        f"/users/{user_id}",
        f"/users/{user_id}/goals",
        f"/users/{user_id}/workouts",
        f"/users/{user_id}/statistics",
        f"/workouts/{victim.ids['session_id']}",
    ]
    return [target.send("GET", path, token).json() for path in paths]


def token_kinds(victim: Victim, attacker: User) -> dict[str, tuple[str | None, int | None]]:
    """Return {kind: (token, status expected or None for 'as the spec says')}."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": victim.user.user_id, "iss": ISSUER, "iat": now}
    expired = {**claims, "iat": now - dt.timedelta(hours=2), "exp": now - dt.timedelta(hours=1)}
    live = {**claims, "exp": now + dt.timedelta(hours=1)}
    head, payload, signature = victim.user.token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {
        "no token": (None, 401),
        "expired token": (jwt.encode(expired, SECRET, algorithm="HS256"), 401),
        "tampered signature": (f"{head}.{payload}.{flipped}", 401),
        "another secret": (jwt.encode(live, "x" * 48, algorithm="HS256"), 401),
        "unsigned (alg none)": (jwt.encode(live, None, algorithm="none"), 401),
        "another user's token": (attacker.token, None),
    }


def authorization_matrix(target: Target, spec: dict[str, Any]) -> Tally:
    """Call every protected operation on the victim's data with every bad token kind."""
    operations = protected_operations(spec)
    victim, attacker = make_victim(target), new_user(target, "10.9.0.3")
    kinds = token_kinds(victim, attacker)
    tally = Tally(f"authorization matrix: {len(operations)} operations x {len(kinds)} token kinds")
    before = snapshot(target, victim)
    for op in operations:
        path = op.path.format(**victim.ids)
        body = _victims_body(op.example, victim)
        for kind, (token, expected) in kinds.items():
            if expected is None:  # a path naming another user: 403; a hidden resource: 404
                expected = 403 if "403" in op.responses else 404
            answer = target.send(op.method, path, token, body)
            what = f"{op.method} {op.path} with {kind}: {answer.status} {answer.text[:120]}"
            tally.check(answer.status == expected and answer.is_json_error(), what)
            leaked = [s for s in victim.secrets() if s in answer.text and s not in path]
            if leaked:
                tally.lose(f"{what} shows {leaked}")
    if snapshot(target, victim) != before:
        tally.lose("the victim's data changed during the matrix")
    return tally


def _victims_body(example: Any, victim: Victim) -> Any:
    if isinstance(example, dict) and "user_id" in example:
        return {**example, "user_id": victim.user.user_id}
    return example


def foreign_ids_under_own_path(target: Target) -> Tally:
    """Name another user's goal under your own user path: 404, and the goal stays as it was."""
    victim, attacker = make_victim(target), new_user(target, "10.9.0.4")
    tally = Tally("another user's ids under your own path")
    before = snapshot(target, victim)
    base = f"/users/{attacker.user_id}/goals/{victim.ids['goal_id']}"
    for method, body in (("GET", None), ("PATCH", {"target_value": 99}), ("DELETE", None)):
        answer = target.send(method, base, attacker.token, body)
        what = f"{method} own path + foreign goal: {answer.status} {answer.text[:120]}"
        tally.check(answer.status == 404 and answer.is_json_error(), what)
        if victim.user.email in answer.text:
            tally.lose(what)
    if snapshot(target, victim) != before:
        tally.lose("the victim's goal changed")
    return tally


def is_refusal(answer: Answer) -> bool:
    return 400 <= answer.status < 500 and answer.is_json_error()


def refused(tally: Tally, answer: Answer, what: str) -> None:
    tally.check(is_refusal(answer), f"{what}: {answer.status} {answer.text[:120]}")


def login(target: Target, email: Any, password: Any, address: str) -> Answer:
    body = {"email": email, "password": password}
    return target.send("POST", "/users/login", body=body, headers={"X-Forwarded-For": address})


# --- secrets in logs --------------------------------------------------------------------------


def secret_fragments(
    passwords: list[str], tokens: list[str], data_dir: Path | None = None
) -> dict[str, str]:
    """Return {what: text} for every secret that must not appear in a log.

    With ``data_dir``, the stack's own secrets too: each Redis role's password and the middle
    line of each private key of the gRPC certificates.
    """
    found = {"JWT secret": SECRET}
    found.update({f"password {n}": p for n, p in enumerate(passwords)})
    for n, token in enumerate(tokens):
        found[f"token {n}"] = token
        found[f"token {n} signature"] = token.rsplit(".", 1)[-1]
    secrets = data_dir / "secrets" if data_dir else None
    for path in sorted(secrets.glob("redis/*.password")) if secrets else ():
        found[f"Redis password {path.stem}"] = path.read_text().strip()
    for path in sorted(secrets.glob("tls/*.key")) if secrets else ():
        lines = path.read_text().splitlines()
        found[f"TLS key {path.stem}"] = lines[len(lines) // 2]
    return found


def scan_logs(log_dir: Path, fragments: dict[str, str]) -> Tally:
    """Look for every secret in every log file under ``log_dir``; each hit is a loss."""
    files = sorted(p for p in log_dir.rglob("*") if p.is_file())
    tally = Tally(f"secrets in logs: {len(files)} log files")
    for path in files:
        text = path.read_text(errors="replace")
        for what, secret in fragments.items():
            tally.sent += 1
            if secret in text:
                tally.lose(f"{what} in {path.name}")
            else:
                tally.succeeded += 1
    return tally


def full_flow(one: Target, two: Target) -> tuple[list[str], list[str]]:
    """Run a session of every kind through two gateways; return (passwords, tokens) it used."""
    import websocket  # websocket-client; only this flow needs it

    a, b = new_user(one, "10.9.9.1"), new_user(two, "10.9.9.2")
    wrong = "wrong-" + uuid.uuid4().hex
    assert login(one, a.email, wrong, "10.9.9.3").status == 401
    again = login(two, a.email, PASSWORD, "10.9.9.4").json()["token"]
    for gateway, user in ((one, a), (two, b)):
        start = {"user_id": user.user_id, "workout_type": "rowing"}
        session = gateway.send("POST", "/workouts/start", user.token, start).json()
        gateway.send("POST", f"/workouts/{session['session_id']}/end", user.token, {})
        gateway.send("GET", f"/users/{user.user_id}/statistics", user.token)
        gateway.send("PATCH", f"/users/{user.user_id}", user.token, {"weight_kg": 70.5})
    goal = {"goal_type": "workout_count", "target_value": 4, "target_date": "2099-12-31"}
    made = two.send("POST", f"/users/{a.user_id}/goals", a.token, goal).json()
    goal_path = f"/users/{a.user_id}/goals/{made['goal_id']}"
    one.send("PATCH", goal_path, a.token, {"target_value": 6})
    one.send("DELETE", goal_path, a.token)
    head, payload, signature = a.token.split(".")
    tampered = f"{head}.{payload}.{signature[::-1]}"
    assert one.send("GET", f"/users/{a.user_id}", tampered).status == 401
    sockets = []
    for gateway, user in ((one, a), (two, b)):
        url = gateway.url.replace("http://", "ws://") + f"/ws?token={user.token}"
        sockets.append(websocket.create_connection(url, timeout=TIMEOUT))
        sockets[-1].recv()  # welcome
    sockets[0].send(json.dumps({"type": "create_session", "workout_type": "hiit", "name": "x"}))
    sockets[0].recv()
    for ws in sockets:
        ws.close()
    refused = one.send("GET", f"/ws?token={tampered}", headers=_UPGRADE)
    assert refused.status == 401
    return [PASSWORD, wrong], [a.token, b.token, again, tampered]


_UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
