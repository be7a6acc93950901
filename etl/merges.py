"""The SQL that moves a staged batch into the star schema, one statement per target.

Upserts only rewrite rows whose values changed (``IS DISTINCT FROM``), so loading the same rows
again changes nothing. Sessions known to be new skip the upsert: a plain INSERT is about half
the work (``APPEND_SESSIONS``). Daily activity is rebuilt at the end of a run for the
(user, day) pairs the run touched (``REBUILD_DAILY``): the new pairs come from the transform,
the old pairs of replaced sessions from the session upsert.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """Where one source's rows go: a staging table, the merge that empties it, its key.

    A target without a merge (``touched``) just collects rows for the end of the run.
    """

    stage: str
    columns: str
    merge: str
    key: str


def _upsert(
    table: str,
    key: str,
    columns: list[str],
    select: str,
    returning: str = "1",
    compared: list[str] | None = None,
) -> str:
    """Return an INSERT … ON CONFLICT that updates only rows whose ``compared`` values differ."""
    values = [c for c in columns if c not in key.split(", ")]
    assignments = ", ".join(f"{c} = excluded.{c}" for c in values)
    old = ", ".join(f"t.{c}" for c in compared or values)
    new = ", ".join(f"excluded.{c}" for c in compared or values)
    return (
        f"INSERT INTO {table} AS t ({', '.join(columns)}) {select}"
        f" ON CONFLICT ({key}) DO UPDATE SET {assignments}"
        f" WHERE ({old}) IS DISTINCT FROM ({new}) RETURNING {returning}"
    )


def _counted(upsert: str) -> str:
    return f"WITH upserted AS ({upsert}) SELECT count(*) FROM upserted"


USER_COLUMNS = ["user_id", "username", "weight_kg", "registered_at", "source_updated_at"]
GOAL_COLUMNS = [
    "goal_id", "date_key", "user_id", "goal_type", "workout_type", "target_value", "progress",
    "status", "created_at", "achieved_at", "target_date", "source_updated_at",
]  # fmt: skip
SESSION_COLUMNS = [
    "session_id", "user_id", "workout_type", "date_key", "status", "start_time", "end_time",
    "duration_minutes", "calories", "weight_kg", "weight_source", "source_updated_at",
]  # fmt: skip
GROUP_COLUMNS = [
    "group_session_id", "date_key", "workout_type", "started_at", "ended_at", "participants",
    "document", "source_updated_at",
]  # fmt: skip


def _session_merge() -> str:
    """Upsert sessions, noting the old (user, day) of every session it replaced.

    Every part of a WITH statement reads the tables as they were before the statement, so
    the lookup finds the old version of each replaced row. It looks up only those (``xmax`` is
    0 on a freshly inserted row version and set on one ON CONFLICT updated), by primary key:
    LIMIT 1 keeps the planner from scanning the whole table instead.
    """
    upsert = _upsert(
        "fact_workout_session",
        "session_id",
        SESSION_COLUMNS,
        f"SELECT {_SESSION_VALUES} FROM stage_sessions",
        "t.session_id, t.xmax <> 0 AS replaced",
    )
    return f"""
WITH upserted AS (
    {upsert}
), previous AS (
    INSERT INTO touched_days
    SELECT old.user_id, old.date_key FROM upserted u CROSS JOIN LATERAL (
        SELECT user_id, date_key FROM fact_workout_session f
        WHERE f.session_id = u.session_id LIMIT 1
    ) AS old
    WHERE u.replaced
    RETURNING 1
)
SELECT count(*) FROM upserted"""


_SESSION_VALUES = """session_id, user_id, workout_type, date_key, status,
    to_timestamp(start_ms / 1000.0), to_timestamp(end_ms / 1000.0), duration_minutes, calories,
    weight_kg, weight_source, to_timestamp(updated_ms / 1000.0)"""

APPEND_SESSIONS = (
    f"INSERT INTO fact_workout_session ({', '.join(SESSION_COLUMNS)})"
    f" SELECT {_SESSION_VALUES} FROM stage_sessions ORDER BY session_id"
)
"""Sessions created after the last run's watermark can't be in the warehouse yet."""

REBUILD_DAILY = [
    "CREATE TEMP TABLE days_to_rebuild ON COMMIT DROP AS"
    " SELECT DISTINCT user_id, date_key FROM touched_days",
    "ANALYZE days_to_rebuild",
    "DELETE FROM fact_daily_activity d USING days_to_rebuild r"
    " WHERE d.user_id = r.user_id AND d.date_key = r.date_key",
    """INSERT INTO fact_daily_activity
        (user_id, date_key, workout_type, sessions, minutes, calories)
    SELECT f.user_id, f.date_key, f.workout_type, count(*), sum(f.duration_minutes),
           sum(f.calories)
    FROM fact_workout_session f JOIN days_to_rebuild r USING (user_id, date_key)
    WHERE f.status = 'ended'
    GROUP BY f.date_key, f.user_id, f.workout_type
    ORDER BY f.date_key, f.user_id, f.workout_type""",
]
"""Recount fact_daily_activity for the (user, day) pairs this run touched."""


_REJECTED_SELECT = (
    "SELECT DISTINCT ON (source, source_key) source, source_key, reason_code, reason, raw,"
    " %(run_id)s FROM stage_rejected ORDER BY source, source_key"
)

TARGETS: dict[str, Target] = {
    "users": Target(
        "stage_users",
        "user_id text, username text, weight_kg float8, registered_at timestamptz,"
        " source_updated_at timestamptz",
        _counted(_upsert("dim_user", "user_id", USER_COLUMNS, "SELECT * FROM stage_users")),
        "user_id",
    ),
    "goals": Target(
        "stage_goals",
        "goal_id text, date_key integer, user_id text, goal_type text, workout_type text,"
        " target_value numeric, progress numeric, status text, created_at timestamptz,"
        " achieved_at timestamptz, target_date date, source_updated_at timestamptz",
        _counted(
            _upsert("fact_goal_snapshot", "goal_id, date_key", GOAL_COLUMNS, "TABLE stage_goals")
        ),
        "goal_id",
    ),
    "sessions": Target(
        "stage_sessions",
        "session_id text, user_id text, workout_type text, date_key integer, status text,"
        " start_ms bigint, end_ms bigint, duration_minutes numeric, calories numeric,"
        " weight_kg float8, weight_source text, updated_ms bigint",
        _session_merge(),
        "session_id",
    ),
    "group_sessions": Target(
        "stage_group_sessions",
        "group_session_id text, date_key integer, workout_type text, started_at timestamptz,"
        " ended_at timestamptz, participants integer, document jsonb,"
        " source_updated_at timestamptz",
        _counted(
            _upsert(
                "fact_group_session",
                "group_session_id",
                GROUP_COLUMNS,
                "TABLE stage_group_sessions",
            )
        ),
        "group_session_id",
    ),
    "touched": Target("touched_days", "user_id text, date_key integer", "", ""),
    "rejected": Target(
        "stage_rejected",
        "source text, source_key text, reason_code text, reason text, raw jsonb",
        _counted(
            _upsert(
                "rejected_rows",
                "source, source_key",
                ["source", "source_key", "reason_code", "reason", "raw", "run_id"],
                _REJECTED_SELECT,
                # The same rejection seen again keeps the run that first saw it.
                compared=["reason_code", "reason", "raw"],
            )
        ),
        "source_key",
    ),
}
