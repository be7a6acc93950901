"""The nightly ETL against the real services' stores and a real (embedded) PostgreSQL warehouse."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from etl import DEFAULTS, EtlError, pipeline, schedule, schema
from etl.merges import RECOUNT_DAILY
from etl.sources import default_sources
from etl.transform import transform
from etl.warehouse import Warehouse, stop_embedded
from fitness.config import load_settings
from tests.support.client import Api
from tests.support.etl_support import (
    CLI_TIMEOUT,
    activity_db,
    ago,
    cli,
    cli_output,
    insert_goal,
    insert_sessions,
    insert_user,
    update_session,
    wait_for_line,
)

TABLES = [
    "dim_user",
    "dim_date",
    "dim_workout_type",
    "fact_workout_session",
    "fact_daily_activity",
    "fact_goal_snapshot",
    "fact_group_session",
    "rejected_rows",
    "etl_watermarks",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Iterator[Warehouse]:
    """An embedded PostgreSQL warehouse of its own, in a temporary directory."""
    directory = tmp_path_factory.mktemp("etl") / "warehouse"
    started = Warehouse(embedded_dir=directory)
    yield Warehouse(started.url)
    started.release()
    stop_embedded(directory)


@pytest.fixture(scope="module")
def settings(stack, warehouse) -> dict:
    """The ETL's settings: the test stack's stores as sources, the test warehouse."""
    overrides = {
        "DATA_DIR": str(stack.data_dir),
        "MONGO_URL": stack.mongo_url,
        "WAREHOUSE_URL": warehouse.url,
        "ETL_SETTLE_SECONDS": 0.0,
    }
    return load_settings(DEFAULTS, overrides)


@pytest.fixture(scope="module")
def sources(settings) -> list:
    return default_sources(settings)


@pytest.fixture(scope="module")
def recorded(stack) -> list[tuple[str, str]]:
    """Three users with goals and workouts recorded through the services."""
    api = Api(stack)
    users = [api.new_user(weight_kg=60.0 + 10 * n) for n in range(3)]
    for n, (user_id, token) in enumerate(users):
        _goal(api, user_id, token, "active_minutes", 30)
        for minutes, kind in [(45, "running"), (20 + n, "yoga"), (33, "cycling")][: n + 1]:
            _workout(api, user_id, token, kind, minutes)
    api.start(*users[0], "swimming")  # still going: not in any total
    return users


def _goal(api, user_id: str, token: str, goal_type: str, target: float) -> None:
    api.create_goal(
        user_id, token, goal_type=goal_type, target_value=target, target_date="2099-12-31"
    )


def _workout(api, user_id: str, token: str, kind: str, minutes: float) -> None:
    begun = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    session = api.start(user_id, token, kind, start_time=begun.isoformat())
    ended = dt.datetime.fromisoformat(session["start_time"]) + dt.timedelta(minutes=minutes)
    api.end(session["session_id"], token, ended.isoformat())


def run_etl(warehouse, sources, **options) -> pipeline.RunResult:
    return pipeline.run(warehouse, sources, pipeline.RunOptions(settle_seconds=0, **options))


def query(warehouse: Warehouse, sql: str, *params) -> list[tuple]:
    with contextlib.closing(warehouse.connect()) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def daily_activity(warehouse: Warehouse, recount: bool = False) -> list[tuple]:
    """Return fact_daily_activity as the runs keep it, or as counted from the session facts."""
    table = "SELECT * FROM fact_daily_activity"
    return query(warehouse, f"{RECOUNT_DAILY if recount else table} ORDER BY 1, 2, 3")


def dump(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Return every row of every table but the run log, in a stable order."""
    return {table: sorted(query(warehouse, f"SELECT * FROM {table}"), key=repr) for table in TABLES}


def test_it_loads_the_same_totals_as_the_statistics(api, recorded, warehouse, sources):
    result = run_etl(warehouse, sources)

    assert result.sources["sessions"].loaded >= 7
    for user_id, token in recorded:
        stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
        [(workouts, duration, calories, average)] = query(
            warehouse,
            "SELECT total_workouts, total_duration, total_calories_burned,"
            " average_session_duration FROM user_totals WHERE user_id = %s",
            user_id,
        )
        assert (workouts, float(duration), float(calories)) == (
            stats["total_workouts"],
            stats["total_duration"],
            stats["total_calories_burned"],
        )
        assert float(average) == pytest.approx(stats["average_session_duration"], abs=0.01)
        [(weekly,)] = query(
            warehouse, "SELECT sum(sessions) FROM weekly_activity WHERE user_id = %s", user_id
        )
        assert weekly == stats["total_workouts"]
    active = query(
        warehouse,
        "SELECT workout_type FROM fact_workout_session WHERE user_id = %s AND status = 'active'",
        recorded[0][0],
    )
    assert active == [("swimming",)]


def test_it_keeps_no_password_hash_nor_email(recorded, warehouse, sources):
    run_etl(warehouse, sources)
    columns = query(
        warehouse,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'dim_user'",
    )
    assert {name for (name,) in columns}.isdisjoint({"password_hash", "email"})


def test_it_leaves_the_warehouse_as_it_was_when_run_again(recorded, warehouse, sources):
    until = dt.datetime.now(dt.UTC)
    run_etl(warehouse, sources, until=until)
    before = dump(warehouse)

    again = run_etl(warehouse, sources, until=until)
    print(f"\nrun with no new data: {again.seconds:.3f} s")
    assert (again.read, again.loaded) == (0, 0)
    assert dump(warehouse) == before

    everything = run_etl(warehouse, sources, until=until, full=True)
    assert everything.read > 0
    assert everything.loaded == 0
    assert dump(warehouse) == before
    assert daily_activity(warehouse) == daily_activity(warehouse, recount=True)


def test_it_keeps_daily_activity_equal_to_a_recount_as_sessions_change(stack, warehouse, sources):
    user_id = insert_user(stack)
    yoga = {"user_id": user_id, "workout_type": "yoga"}
    earlier = {**yoga, "start_time": ago(days=3, hours=1), "end_time": ago(days=3)}
    later = {**yoga, "start_time": ago(hours=-30), "end_time": ago(hours=-31)}
    keys = insert_sessions(
        stack,
        [
            ("same day and type as b", {**yoga, "duration": 30.0}),
            ("same day and type as a", {**yoga, "duration": 12.5, "calories_burned": 60.25}),
            ("a day the table has", earlier),
            ("a day it has not yet", later),
            ("still going", {**yoga, "status": "active", "end_time": None, "duration": None}),
            ("too short", {**yoga, "status": "active", "end_time": None, "duration": None}),
        ],
    )
    run_etl(warehouse, sources)
    assert daily_activity(warehouse) == daily_activity(warehouse, recount=True)
    (a, _), (b, _), (earlier, _), (later, _), (going, _), (short, _) = keys

    update_session(stack, a, duration=31.25, calories_burned=100.5)
    update_session(stack, earlier, workout_type="cycling")  # its old day and type empty
    update_session(stack, later, status="active")
    update_session(stack, going, status="ended", end_time=ago(minutes=1), duration=59.0)
    update_session(stack, short, status="discarded", end_time=ago(minutes=1), duration=0.5)
    # Created after the last run, yet loaded already: the append falls back to the upsert.
    update_session(stack, b, created_at=dt.datetime.now(dt.UTC), duration=13.0)
    result = run_etl(warehouse, sources)

    assert result.sources["sessions"].loaded >= 6  # the services may have changed others
    assert daily_activity(warehouse) == daily_activity(warehouse, recount=True)
    assert [row[2:4] for row in daily_activity(warehouse) if row[0] == user_id] == [
        ("cycling", 1),
        ("yoga", 3),
    ]
    sql = "SELECT status, duration_minutes FROM fact_workout_session WHERE session_id = %s"
    assert query(warehouse, sql, short) == [("discarded", Decimal("0.5"))]


def test_it_moves_sessions_keyed_by_no_uuid_to_rejected_rows_when_migrating(warehouse, monkeypatch):
    name = f"migration_{uuid.uuid4().hex[:8]}"
    with contextlib.closing(warehouse.connect(autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    old = Warehouse(warehouse.url.replace("/postgres?", f"/{name}?", 1))
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
    with contextlib.closing(old.connect()) as conn:
        schema.migrate(conn)
        with conn, conn.cursor() as cur:
            for session_id in [str(uuid.uuid4()), "not-a-uuid"]:
                cur.execute(
                    "INSERT INTO fact_workout_session VALUES (%s, 'u1', 'yoga', 20250101,"
                    " 'ended', now(), now(), 10, 50, NULL, NULL, now())",
                    (session_id,),
                )
            cur.execute(
                "INSERT INTO fact_daily_activity VALUES ('u1', 20250101, 'yoga', 2, 20, 100)"
            )
        monkeypatch.undo()

        assert schema.migrate(conn) == [3, 4]

    assert query(old, "SELECT source_key, reason_code FROM rejected_rows") == [
        ("not-a-uuid", "bad_key")
    ]
    assert daily_activity(old) == daily_activity(old, recount=True)
    assert [row[3] for row in daily_activity(old)] == [1]
    with contextlib.closing(warehouse.connect(autocommit=True)) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")


@pytest.mark.parametrize(
    ("created", "fresh"),
    [
        (dt.datetime(2025, 1, 1, 0, 0, 0, 999), False),  # within the last run's millisecond
        (dt.datetime(2025, 1, 1, 0, 0, 0, 1000), True),
        (dt.datetime(2025, 1, 1, 1, 0, 0, 999, tzinfo=dt.timezone(dt.timedelta(hours=1))), False),
        (dt.datetime(2025, 1, 1, 0, 0, 0, 1000, tzinfo=dt.UTC), True),
    ],
)
def test_it_appends_only_sessions_created_after_the_last_run(created, fresh):
    doc = {"_id": str(uuid.uuid4()), "user_id": "u", "workout_type": "yoga", "status": "active"}
    doc |= {"start_time": created, "updated_at": created, "created_at": created}
    last_run = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)

    out = transform("sessions", [doc], {"u"}, last_run)

    assert (len(out.fresh), len(out.lines)) == ((1, 0) if fresh else (0, 1))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"duration": float("nan")}, "implausible_duration"),
        ({"workout_type": "a\tb\\c\n\x00"}, "unknown_workout_type"),
    ],
)
def test_it_rejects_values_a_mongodb_may_hold_and_ferretdb_refuses(fields, reason):
    # FerretDB, the test stack's store, refuses NaN and NUL (its known differences 2 and 5),
    # so these rows can't be written there; MongoDB stores them, and the ETL must cope.
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    doc = {"_id": str(uuid.uuid4()), "user_id": "u", "workout_type": "yoga", "status": "ended"}
    doc |= {"start_time": now, "end_time": now, "duration": 1.0, "calories_burned": 1.0}
    doc |= {"updated_at": now, "created_at": now, **fields}

    out = transform("sessions", [doc], {"u"}, 0)

    [line] = out.rejections
    assert line.split("\t")[2] == reason
    assert "\x00" not in line and line.count("\n") == 1  # one COPY line, nothing it refuses


def test_it_refuses_a_warehouse_older_than_postgresql_15():
    class Old:
        server_version = 140013

    with pytest.raises(EtlError, match="15"):
        schema.migrate(Old())


def test_it_rejects_bad_rows_with_reasons_and_loads_the_rest(stack, warehouse, sources):
    user_id = insert_user(stack)
    good, *bad = insert_sessions(
        stack,
        [
            ("loaded", {"user_id": user_id}),
            ("unknown_workout_type", {"user_id": user_id, "workout_type": "unicycling"}),
            ("unknown_workout_type", {"user_id": user_id, "workout_type": "a\tb\\c\n"}),
            ("malformed", {"user_id": [user_id]}),
            ("bad_key", {"_id": 42, "user_id": user_id}),
            ("bad_key", {"_id": "not-a-uuid", "user_id": user_id}),
            ("bad_key", {"_id": str(uuid.uuid4()).upper(), "user_id": user_id}),
            ("end_before_start", {"user_id": user_id, "end_time": ago(hours=5)}),
            ("negative_duration", {"user_id": user_id, "duration": -5.0}),
            ("bad_number", {"user_id": user_id, "calories_burned": "lots"}),
            ("bad_status", {"user_id": user_id, "status": "paused"}),
            ("unknown_user", {"user_id": "nobody-" + uuid.uuid4().hex}),
            ("missing_field", {"user_id": user_id, "start_time": None}),
        ],
    )
    goal_id = insert_goal(stack, user_id, goal_type="steps")

    result = run_etl(warehouse, sources)

    assert result.sources["sessions"].rejected == len(bad)
    rejected = dict(
        query(
            warehouse,
            "SELECT source_key, reason_code FROM rejected_rows WHERE source_key = ANY(%s)",
            [key for key, _ in [good, *bad]] + [goal_id],
        )
    )
    assert rejected == dict(bad) | {goal_id: "unknown_goal_type"}
    [(raw,)] = query(warehouse, "SELECT raw FROM rejected_rows WHERE source_key = %s", bad[0][0])
    assert raw["workout_type"] == "unicycling"
    assert query(
        warehouse, "SELECT status FROM fact_workout_session WHERE session_id = %s", good[0]
    ) == [("ended",)]


def test_it_loads_a_rejected_session_once_its_user_arrives(stack, warehouse, sources):
    user_id = str(uuid.uuid4())  # not registered yet
    [(session_id, _)] = insert_sessions(stack, [("later", {"user_id": user_id})])
    run_etl(warehouse, sources)
    assert query(
        warehouse, "SELECT reason_code FROM rejected_rows WHERE source_key = %s", session_id
    ) == [("unknown_user",)]

    insert_user(stack, user_id)
    result = run_etl(warehouse, sources)

    assert result.sources["sessions"].retried >= 1
    assert query(warehouse, "SELECT 1 FROM rejected_rows WHERE source_key = %s", session_id) == []
    [(workouts,)] = query(
        warehouse, "SELECT total_workouts FROM user_totals WHERE user_id = %s", user_id
    )
    assert workouts == 1


def test_it_loads_saved_group_sessions(stack, warehouse, sources):
    now = dt.datetime.now(dt.UTC)
    group_id = str(uuid.uuid4())
    doc = {"_id": group_id, "participants": ["a", "b", "c"], "workout_type": "hiit"}
    doc |= {"start_time": now - dt.timedelta(hours=1), "end_time": now, "updated_at": now}
    activity_db(stack)["group_sessions"].insert_one(doc)

    run_etl(warehouse, sources)

    [(participants, kind)] = query(
        warehouse,
        "SELECT participants, document->>'workout_type' FROM fact_group_session"
        " WHERE group_session_id = %s",
        group_id,
    )
    assert (participants, kind) == (3, "hiit")


def test_it_leaves_the_previous_state_when_a_run_is_killed(
    api, stack, recorded, warehouse, sources, settings
):
    run_etl(warehouse, sources)
    before = dump(warehouse)
    _workout(api, *recorded[2], "rowing", 12)

    process = cli(settings, "run", FITNESS_ETL_DEBUG_PAUSE_SECONDS="120")
    try:
        wait_for_line(process, "pausing")
        [(run_id, outcome)] = query(
            warehouse, "SELECT run_id, outcome FROM etl_runs ORDER BY 1 DESC LIMIT 1"
        )
        assert outcome == "running"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=CLI_TIMEOUT)
    finally:
        process.kill()

    assert dump(warehouse) == before
    after = run_etl(warehouse, sources)
    assert after.sources["sessions"].loaded == 1
    assert query(warehouse, "SELECT outcome FROM etl_runs WHERE run_id = %s", run_id) == [
        ("abandoned",)
    ]
    [(rowing,)] = query(
        warehouse,
        "SELECT count(*) FROM fact_workout_session WHERE user_id = %s AND workout_type = 'rowing'",
        recorded[2][0],
    )
    assert rowing == 1


def test_it_prints_reports_status_and_charts(recorded, warehouse, sources, settings, tmp_path):
    run_etl(warehouse, sources)
    username = query(warehouse, "SELECT username FROM dim_user WHERE user_id = %s", recorded[0][0])

    totals = cli_output(settings, "report", "user_totals", "--limit", "100000")
    assert username[0][0] in totals
    assert "rank" in cli_output(settings, "report", "leaderboard")
    status = cli_output(settings, "status")
    assert warehouse.url in status
    assert "psql" in status
    assert "succeeded" in status
    chart = tmp_path / "weekly.png"
    cli_output(settings, "report", "weekly_activity", "--png", str(chart))
    assert chart.read_bytes().startswith(b"\x89PNG")

    refused = cli(settings, "report", "leaderboard", "--png", str(tmp_path / "no.png"))
    _, err = refused.communicate(timeout=CLI_TIMEOUT)
    assert refused.returncode != 0
    assert "not a time series" in err


def test_it_starts_an_embedded_warehouse_by_default_and_stops_it_after(tmp_path):
    env = {**os.environ, "FITNESS_DATA_DIR": str(tmp_path), "FITNESS_WAREHOUSE_URL": ""}
    done = subprocess.run(
        [sys.executable, "-m", "etl", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert f"host={tmp_path / 'warehouse'}" in done.stdout
    assert "embedded PostgreSQL" in done.stdout
    assert not (tmp_path / "warehouse" / "postmaster.pid").exists()


def test_it_runs_on_schedule_until_stopped(settings):
    process = cli(settings, "schedule", "--now", FITNESS_ETL_SCHEDULE="0 2 * * *")
    try:
        line = wait_for_line(process, "ETL run")
        assert '"log.level":"info"' in line
        assert "succeeded" in line
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=CLI_TIMEOUT) == 0
    finally:
        process.kill()


@pytest.mark.parametrize("expression", ["", "every night", "0 2 * *", "61 2 * * *", "* * * * * *"])
def test_it_refuses_a_bad_schedule(expression):
    with pytest.raises(schedule.BadSchedule):
        schedule.check(expression)


def test_it_fires_at_the_next_time_the_expression_names():
    ticks = iter(
        [dt.datetime(2026, 3, 1, 1, 59, tzinfo=dt.UTC) + dt.timedelta(minutes=n) for n in range(3)]
    )
    seen: list[dt.datetime] = []

    def clock() -> dt.datetime:
        seen.append(next(ticks))
        return seen[-1]

    stop = threading.Event()
    schedule.serve("0 2 * * *", stop.set, stop, clock)

    assert stop.is_set()
    assert seen[-1] == dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC)
