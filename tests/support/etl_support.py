"""Helpers of the ETL tests: write straight into the services' stores, run the ETL's CLI."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import subprocess
import sys
import threading
import time
import uuid

import sqlalchemy

from fitness import mongo
from tests.support import REPO_ROOT
from tests.support.stack import activity_db
from user_service.models import Goal, User

CLI_TIMEOUT = 60


def ago(**delta) -> dt.datetime:
    """Return the time ``delta`` ago."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(**delta)


def insert_sessions(stack, cases: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """Write sessions straight into the activity store; return (session id, expected reason)."""
    now = dt.datetime.now(dt.UTC)  # not rounded down: an older updated_at would be a late write
    docs, keys = [], []
    for reason, fields in cases:
        doc = {
            "_id": str(uuid.uuid4()),
            "workout_type": "walking",
            "status": "ended",
            "start_time": now - dt.timedelta(hours=1),
            "end_time": now,
            "duration": 60.0,
            "calories_burned": 301.0,
            "weight_kg": 70.0,
            "weight_source": "default",
            "progress_reported": True,  # keeps the service's report loop away from them
            "created_at": now,
            "updated_at": now,
            **fields,
        }
        docs.append({key: value for key, value in doc.items() if value is not None})
        keys.append((doc["_id"] if isinstance(doc["_id"], str) else repr(doc["_id"]), reason))
    activity_db(stack)["sessions"].insert_many(docs)
    return keys


def update_session(stack, session_id: str, **fields) -> None:
    """Change a session straight in the activity store, as an edit through the service would."""
    fields["updated_at"] = dt.datetime.now(dt.UTC)
    activity_db(stack)["sessions"].update_one({"_id": session_id}, mongo.revised({"$set": fields}))


def user_db(stack) -> sqlalchemy.Engine:
    """Return an engine on the stack's user database."""
    return sqlalchemy.create_engine(f"sqlite:///{stack.data_dir / 'users.db'}")


def insert_goal(stack, user_id: str, **fields) -> str:
    """Add a goal straight into the user database; return its id."""
    goal_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    row = {
        "id": goal_id,
        "user_id": user_id,
        "workout_type": None,
        "target_value": 10.0,
        "target_date": dt.date(2099, 1, 1),
        "current_progress": 0.0,
        "status": "active",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    with user_db(stack).begin() as conn:
        conn.execute(sqlalchemy.insert(Goal.__table__).values(**row))
    return goal_id


def insert_user(stack, user_id: str | None = None) -> str:
    """Add a user straight into the user database; return its id."""
    user_id = user_id or str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    name = "late" + uuid.uuid4().hex[:8]
    row = {"id": user_id, "username": name, "email": f"{name}@example.com"}
    row |= {"password_hash": "x", "weight_kg": None, "created_at": now, "updated_at": now}
    with user_db(stack).begin() as conn:
        conn.execute(sqlalchemy.insert(User.__table__).values(**row))
    return user_id


def cli(settings: dict, *args: str, **env: str) -> subprocess.Popen:
    """Start ``python -m etl ARGS`` on the test stack and warehouse."""
    environment = {
        **os.environ,
        "FITNESS_DATA_DIR": settings["DATA_DIR"],
        "FITNESS_MONGO_URL": settings["MONGO_URL"],
        "FITNESS_WAREHOUSE_URL": settings["WAREHOUSE_URL"],
        "FITNESS_ETL_SETTLE_SECONDS": "0",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "etl", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def cli_output(settings: dict, *args: str) -> str:
    """Run ``python -m etl ARGS``; return what it printed (it must succeed)."""
    process = cli(settings, *args)
    out, err = process.communicate(timeout=CLI_TIMEOUT)
    assert process.returncode == 0, err
    return out


def wait_for_line(process: subprocess.Popen, text: str) -> str:
    """Return the first line of the process's output with ``text`` in it."""
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout])
    reader.daemon = True  # it ends with the process's output
    reader.start()
    deadline = time.monotonic() + CLI_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=0.5)
            if text in line:
                return line
        if process.poll() is not None and lines.empty():
            break
    raise AssertionError(f"no {text!r} in the output; stderr: {process.stderr.read()}")
