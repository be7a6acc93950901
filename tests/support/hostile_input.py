"""Hostile input probes: NoSQL and SQL injection, oversized bodies, odd ids, password guessing.

Shared by ``tests/security/test_hostile_input.py`` and ``bench/security_probe.py``; see
``hostile.py`` for what the counts mean.
"""

from __future__ import annotations

import http.client
import json
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from activity_service.store import ActivityStore
from tests.support.hostile import (
    PASSWORD,
    TIMEOUT,
    UPLOAD_LIMIT,
    Answer,
    Operation,
    Tally,
    Target,
    User,
    is_refusal,
    login,
    new_user,
    refused,
)

# --- NoSQL operator injection -----------------------------------------------------------------

NOSQL_VALUES: list[Any] = [
    {"$gt": ""},
    {"$ne": None},
    {"$where": "sleep(1000) || true"},
    {"$regex": ".*"},
    {"$in": ["running", "cycling"]},
    {"$exists": True},
    ["$gt", ""],
    "$where",
    "$ne",
    "function() { return true; }",
    {"a.b": 1},
    {"$set": {"status": "ended"}},
]
NOSQL_KEYS = ["$where", "$set", "$gt", "user_id.$ne", "a.b", "$"]
NOSQL_QUERIES = [
    "user_id[$ne]=x",
    "user_id=%7B%22%24ne%22%3Anull%7D",
    "%24where=sleep(1000)",
    "limit[$gt]=0",
    "limit=%7B%22%24gt%22%3A0%7D",
    "offset=%7B%22%24ne%22%3Anull%7D",
    "status[$ne]=ended",
    "workout_type[$regex]=.*",
    "a.b=1",
]
NOSQL_IDS = ["$where", '{"$gt":""}', "[$ne]", "$ne=null", "a.b", "$", "{}"]


def nosql_injection(target: Target) -> Tally:
    """Send MongoDB operators into every field, key, id and query that reaches the store."""
    tally = Tally("NoSQL operator injection")
    me = new_user(target, "10.9.1.1")
    store = target.activity()
    counts = _mongo_counts(store)
    _inject_start(target, me, tally)
    session_id = _active_session(target, me)
    for value in NOSQL_VALUES:
        answer = target.send("POST", f"/workouts/{session_id}/end", me.token, {"end_time": value})
        refused(tally, answer, f"end_time={value!r}")
    for key in NOSQL_KEYS:
        answer = target.send("POST", f"/workouts/{session_id}/end", me.token, {key: "x"})
        refused(tally, answer, f"end body key {key!r}")
    for raw_id in NOSQL_IDS:
        for method, suffix in (("GET", ""), ("POST", "/end")):
            path = f"/workouts/{quote(raw_id, safe='')}{suffix}"
            refused(tally, target.send(method, path, me.token, {} if suffix else None), path)
    _inject_queries(target, me, tally)
    if target.send("GET", f"/workouts/{session_id}", me.token).json()["status"] != "active":
        tally.lose("an injected end request ended the session")
    target.send("POST", f"/workouts/{session_id}/end", me.token, {})
    _check_mongo(store, counts, expected_new=1, tally=tally)
    return tally


def _inject_start(target: Target, me: User, tally: Tally) -> None:
    base = {"user_id": me.user_id, "workout_type": "running"}
    for name in ("user_id", "workout_type", "start_time"):
        for value in NOSQL_VALUES:
            answer = target.send("POST", "/workouts/start", me.token, {**base, name: value})
            refused(tally, answer, f"start {name}={value!r}")
    for key in NOSQL_KEYS:
        answer = target.send("POST", "/workouts/start", me.token, {**base, key: "x"})
        refused(tally, answer, f"start body key {key!r}")


def _active_session(target: Target, me: User) -> str:
    body = {"user_id": me.user_id, "workout_type": "running"}
    answer = target.send("POST", "/workouts/start", me.token, body)
    assert answer.status == 201, answer.text
    return answer.json()["session_id"]


def _inject_queries(target: Target, me: User, tally: Tally) -> None:
    """An operator in a query string is refused, or ignored: the answer is the plain one."""
    for resource in ("workouts", "statistics", "suggestions"):
        path = f"/users/{me.user_id}/{resource}"
        plain = target.send("GET", path, me.token)
        for query in NOSQL_QUERIES:
            answer = target.send("GET", f"{path}?{query}", me.token)
            ignored = answer.status == 200 and answer.json() == plain.json()
            tally.check(ignored or is_refusal(answer), f"{path}?{query}: {answer.status}")


def _mongo_counts(store: ActivityStore) -> dict[str, int]:
    return {name: store.db[name].count_documents({}) for name in ("sessions", "active_sessions")}


def _check_mongo(store: ActivityStore, before: dict[str, int], expected_new: int, tally) -> None:
    after = _mongo_counts(store)
    if after["sessions"] != before["sessions"] + expected_new:
        tally.lose(f"sessions went from {before['sessions']} to {after['sessions']}")
    for doc in store.sessions.find({}):
        if _operator_keys(doc) or not isinstance(doc.get("workout_type"), str):
            tally.lose(f"stored session with operators: {doc['_id']}")


def _operator_keys(value: Any) -> bool:
    if isinstance(value, dict):
        bad = any(str(k).startswith("$") or "." in str(k) for k in value)
        return bad or any(_operator_keys(v) for v in value.values())
    if isinstance(value, list):
        return any(_operator_keys(v) for v in value)
    return False


# --- SQL injection ----------------------------------------------------------------------------

SQL_STRINGS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "admin'--",
    '" OR ""="',
    "'; DROP TABLE users; --",
    "x' UNION SELECT password_hash FROM users --",
    "1; SELECT sqlite_version()",
    "%' OR email LIKE '%",
]


def sql_injection(target: Target, strings: list[str] = SQL_STRINGS) -> Tally:
    """Send SQL into every field that reaches the user database; it is data or refused."""
    tally = Tally("SQL injection")
    users, goals = target.count_rows("users"), target.count_rows("goals")
    me = new_user(target, "10.9.2.1")
    registered = 1 + _inject_register(target, tally, strings)
    _inject_login(target, me, tally, strings)
    _inject_goals(target, me, tally, strings)
    if target.count_rows("users") != users + registered:
        tally.lose("the users table has the wrong number of rows")
    if target.count_rows("goals") != goals:
        tally.lose("the goals table has the wrong number of rows")
    return tally


def _inject_register(target: Target, tally: Tally, strings: list[str]) -> int:
    """Return how many accounts with SQL in them were (correctly) created as plain data."""
    created = 0
    for text in strings:
        answer = target.send("POST", "/users/register", body=_account(username=text))
        refused(tally, answer, f"register username={text!r}")
        # Quotes and dashes are legal in an email's local part: stored as typed, or refused.
        email = f"{text}@example.com"
        answer = target.send("POST", "/users/register", body=_account(email=email))
        as_data = answer.status == 201 and answer.json()["email"] == email.lower()
        tally.check(as_data or is_refusal(answer), f"register email={email!r}: {answer.status}")
        created += answer.status == 201
        # As a password it is plain data: the account works with exactly that password.
        account = _account(password=text + "-long-enough")
        answer = target.send("POST", "/users/register", body=account)
        right = login(target, account["email"], account["password"], "10.9.2.2")
        wrong = login(target, account["email"], text, "10.9.2.3")
        ok = answer.status == 201 and right.status == 200 and wrong.status in (400, 401)
        tally.check(ok, f"password {text!r}: {answer.status}/{right.status}/{wrong.status}")
        created += answer.status == 201
    return created


def _account(**fields: str) -> dict[str, str]:
    name = "u" + uuid.uuid4().hex[:10]
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD, **fields}


def _inject_login(target: Target, me: User, tally: Tally, strings: list[str]) -> None:
    for n, text in enumerate(strings):
        address = f"10.9.3.{n}"
        for email, password in ((text, text), (me.email, text), (text, PASSWORD)):
            answer = login(target, email, password, address)
            good = answer.status in (400, 401) and answer.is_json_error()
            tally.check(good and "token" not in answer.text, f"login {email!r}: {answer.status}")


def _inject_goals(target: Target, me: User, tally: Tally, strings: list[str]) -> None:
    base = {"goal_type": "workout_count", "target_value": 5, "target_date": "2099-12-31"}
    path = f"/users/{me.user_id}/goals"
    for text in strings:
        for name in ("goal_type", "workout_type", "target_value", "target_date"):
            refused(tally, target.send("POST", path, me.token, {**base, name: text}), name)
        refused(
            tally,
            target.send("PATCH", f"/users/{me.user_id}", me.token, {"weight_kg": text}),
            "weight",
        )
        goal = quote(text, safe="")
        for method, body in (("GET", None), ("PATCH", {"target_value": 7}), ("DELETE", None)):
            answer = target.send(method, f"{path}/{goal}", me.token, body)
            tally.check(answer.status == 404 and answer.is_json_error(), f"{method} goal {text!r}")


# --- oversized bodies -------------------------------------------------------------------------

MAX_BODY_BYTES = 64 * 1024
UPLOAD = "multipart/form-data; boundary=x"


def oversized_bodies(target: Target, spec: dict[str, Any]) -> Tally:
    """Send too-large, chunked and deeply nested bodies to every operation that takes one."""
    tally = Tally("oversized bodies")
    me = new_user(target, "10.9.4.1")
    users, sessions = target.count_rows("users"), _mongo_counts(target.activity())
    ids = {"user_id": me.user_id, "goal_id": "g", "session_id": "s", "saga_id": "x"}
    big = json.dumps({"username": "a" * (MAX_BODY_BYTES + 1)}).encode()
    deep = b"[" * 20000 + b"]" * 20000
    deep_object = b'{"a":' * 5000 + b"1" + b"}" * 5000
    for op in _body_operations(spec, uploads=True):  # files: the limit is UPLOAD_LIMIT
        path = op.path.format(**ids)
        answer = _announced(target, op.method, path, me.token, UPLOAD_LIMIT + 1)
        _too_large(tally, answer, f"{op.method} {op.path} announced")
        answer = _chunked(target, op.method, path, me.token, UPLOAD_LIMIT + 8192, UPLOAD)
        _too_large(tally, answer, f"{op.method} {op.path} chunked")
    for op in _body_operations(spec):
        path = op.path.format(**ids)
        for name, raw in (("large", big), ("deep list", deep), ("deep object", deep_object)):
            answer = target.send(op.method, path, me.token, raw=raw)
            _too_large(tally, answer, f"{op.method} {op.path} {name}")
        answer = _chunked(target, op.method, path, me.token, MAX_BODY_BYTES * 4)
        _too_large(tally, answer, f"{op.method} {op.path} chunked")
    if target.count_rows("users") != users or _mongo_counts(target.activity()) != sessions:
        tally.lose("an oversized body stored something")
    return tally


def _body_operations(spec: dict[str, Any], uploads: bool = False) -> list[Operation]:
    """Return the operations with a JSON body (or, with ``uploads``, with a file upload)."""
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not isinstance(op, dict) or not op.get("requestBody"):
                continue
            if ("multipart/form-data" in op["requestBody"]["content"]) == uploads:
                found.append(Operation(method.upper(), path, set(op["responses"]), None))
    return found


def _announced(target: Target, method: str, path: str, token: str, size: int) -> Answer:
    """Announce a body of ``size`` bytes and send none: the limit is checked before reading."""
    parts = urlsplit(target.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    try:
        conn.putrequest(method, path)
        for name, value in (("Authorization", f"Bearer {token}"), ("Content-Type", UPLOAD)):
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        conn.close()


def _too_large(tally: Tally, answer: Answer, what: str) -> None:
    tally.check(answer.status == 413 and answer.is_json_error(), f"{what}: {answer.status}")


def _chunked(
    target: Target,
    method: str,
    path: str,
    token: str,
    size: int,
    content_type: str = "application/json",
) -> Answer:
    """Send a body of ``size`` bytes in chunks, with no Content-Length."""
    parts = urlsplit(target.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    chunk = b" " * 8192
    try:
        conn.request(method, path, body=iter([chunk] * (size // len(chunk))), headers=headers)
        response = conn.getresponse()
        return Answer(response.status, response.headers, response.read())
    except (ConnectionError, http.client.HTTPException) as exc:
        # Closing the connection after the answer is fine; losing the answer is not.
        return Answer(0, http.client.HTTPMessage(), str(exc).encode())
    finally:
        conn.close()


# --- path traversal and odd ids ---------------------------------------------------------------

ODD_IDS = [
    "..%2f..%2fetc%2fpasswd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cwindows%5cwin.ini",
    "%2e%2e",
    "..",
    ".",
    "a%2fb",
    "a%3Fb%3D1",
    "a%23b",
    "%00",
    "a%00b",
    "%E2%80%AE%F0%9F%98%80",
    "%C0%AE%C0%AE%C0%AF",
    "%FF%FE",
    "x" * 2000,
    "%20",
]


def odd_paths(me: User) -> list[tuple[str, str]]:
    """Return (method, path) pairs putting every odd id in every path parameter."""
    found = []
    for odd in ODD_IDS:
        found += [
            ("GET", f"/users/{odd}"),
            ("GET", f"/users/{odd}/workouts"),
            ("GET", f"/users/{me.user_id}/goals/{odd}"),
            ("PATCH", f"/users/{me.user_id}/goals/{odd}"),
            ("DELETE", f"/users/{me.user_id}/goals/{odd}"),
            ("GET", f"/workouts/{odd}"),
            ("POST", f"/workouts/{odd}/end"),
            ("GET", f"/sagas/{odd}"),
            ("GET", f"/{odd}"),
            ("GET", f"/docs/{odd}"),
        ]
    return found


def path_traversal(target: Target) -> Tally:
    """Put traversal sequences and odd ids in every path parameter: 4xx JSON, never a file."""
    tally = Tally("path traversal and odd ids")
    me = new_user(target, "10.9.5.1")
    for method, path in odd_paths(me) + _suffixed_real_ids(target, me):
        body = {"target_value": 7} if method == "PATCH" else None
        answer = target.send(method, path, me.token, body)
        what = f"{method} {path[:80]}: {answer.status} {answer.text[:100]}"
        tally.check(is_refusal(answer), what)
        if "root:" in answer.text or "[fonts]" in answer.text:
            tally.lose(what)
    # Past gunicorn's request-line limit (4094 bytes) gunicorn itself answers 414, in HTML.
    answer = target.send("GET", f"/workouts/{'x' * 5000}", me.token)
    tally.check(answer.status == 414, f"5000-character id: {answer.status}")
    return tally


def _suffixed_real_ids(target: Target, me: User) -> list[tuple[str, str]]:
    """Return paths naming a real goal and session plus an encoded "?", "#" or "/.."."""
    goal = {"goal_type": "workout_count", "target_value": 5, "target_date": "2099-12-31"}
    goal_id = target.send("POST", f"/users/{me.user_id}/goals", me.token, goal).json()["goal_id"]
    start = {"user_id": me.user_id, "workout_type": "yoga"}
    session_id = target.send("POST", "/workouts/start", me.token, start).json()["session_id"]
    found = []
    for suffix in ("%3Fx=1", "%23x", "%2f..", "%2F%2E%2E%2F", ";x"):
        found += [
            ("GET", f"/users/{me.user_id}/goals/{goal_id}{suffix}"),
            ("GET", f"/workouts/{session_id}{suffix}"),
            ("POST", f"/workouts/{session_id}{suffix}/end"),
        ]
    return found


# --- login brute force ------------------------------------------------------------------------


def login_brute_force(target: Target, attempts: int = 30) -> Tally:
    """Guess one account's password many times: the limit answers 429 before it is found."""
    tally = Tally("login brute force")
    me = new_user(target, "10.9.6.1")
    statuses = []
    for n in range(attempts):
        answer = login(target, me.email, f"guess-{n:04d}", f"10.9.7.{n % 250}")
        statuses.append(answer.status)
        tally.check(answer.status in (401, 429) and answer.is_json_error(), f"guess {n}")
    right = login(target, me.email, PASSWORD, "10.9.8.1")
    if 429 not in statuses:
        tally.lose(f"{attempts} wrong passwords and still no 429")
    if right.status != 429:
        tally.lose(f"the right password after {attempts} guesses got {right.status}, not 429")
    return tally
