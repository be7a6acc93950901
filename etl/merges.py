"""The SQL that moves a staged batch into the star schema, one statement per target.

Upserts only rewrite rows whose values changed (``IS DISTINCT FROM``), so loading the same rows
again changes nothing. Sessions known to be new skip the upsert: a plain INSERT is about half
the work (``APPEND_SESSIONS``). Daily activity is kept up to date batch by batch, by deltas: what
a batch's sessions add to their (user, day, workout type), less what the session versions they
replace counted there (``DAILY_FROM_FRESH``, ``DAILY_FROM_CHANGES``). The sums are ``numeric``,
so adding and subtracting is exact and gives what a recount would (``RECOUNT_DAILY``, which the
tests compare against).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """Where one source's rows go: a staging table, the merge that empties it, its key."""

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
DAILY_KEY = "user_id, date_key, workout_type"
_DAILY_COLUMNS = f"{DAILY_KEY}, sessions, minutes, calories"
DAILY_CHANGES = "daily_changes"
"""Per-session deltas of daily activity from upserted sessions, merged after each batch."""


def _session_merge() -> str:
    """Upsert sessions, noting what each one adds to its day and what the version it replaced
    took away.

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
        "t.session_id, t.xmax <> 0 AS replaced, t.status, t.user_id, t.date_key,"
        " t.workout_type, t.duration_minutes, t.calories",
    )
    return f"""
WITH upserted AS (
    {upsert}
), changes AS (
    INSERT INTO {DAILY_CHANGES}
    SELECT user_id, date_key, workout_type, 1, duration_minutes, calories
    FROM upserted WHERE status = 'ended'
    UNION ALL
    SELECT old.user_id, old.date_key, old.workout_type, -1, -old.duration_minutes, -old.calories
    FROM upserted u CROSS JOIN LATERAL (
        SELECT user_id, date_key, workout_type, status, duration_minutes, calories
        FROM fact_workout_session f WHERE f.session_id = u.session_id LIMIT 1
    ) AS old
    WHERE u.replaced AND old.status = 'ended'
    RETURNING 1
)
SELECT count(*) FROM upserted"""


# float8 division: the same double as the numeric ``start_ms / 1000.0`` cast to float8 (both
# round the exact quotient once), for less work.
_SESSION_VALUES = """session_id, user_id, workout_type, date_key, status,
    to_timestamp(start_ms / 1000::float8), to_timestamp(end_ms / 1000::float8), duration_minutes,
    calories, weight_kg, weight_source, to_timestamp(updated_ms / 1000::float8)"""

APPEND_SESSIONS = (
    f"INSERT INTO fact_workout_session ({', '.join(SESSION_COLUMNS)})"
    f" SELECT {_SESSION_VALUES} FROM stage_sessions ORDER BY session_id"
)
"""Sessions created after the last run's watermark can't be in the warehouse yet."""


def _daily_merge(deltas: str, emptying: bool = True) -> str:
    """Return a MERGE adding ``deltas`` (a query of DAILY_KEY, sessions, minutes, calories)
    to fact_daily_activity; if ``emptying``, dropping the rows no session counts on any more.

    MERGE, not INSERT … ON CONFLICT: it inserts new keys without a speculative insertion
    (measured about half the work here) and deletes emptied rows in the same statement. It is
    not safe against concurrent inserts of the same key; only the run holding the run lock
    writes this table.
    """
    emptied = "WHEN MATCHED AND t.sessions + d.sessions = 0 THEN DELETE" if emptying else ""
    return f"""
MERGE INTO fact_daily_activity AS t USING ({deltas}) AS d
ON t.date_key = d.date_key AND t.user_id = d.user_id AND t.workout_type = d.workout_type
{emptied}
WHEN MATCHED THEN UPDATE SET sessions = t.sessions + d.sessions,
    minutes = t.minutes + d.minutes, calories = t.calories + d.calories
WHEN NOT MATCHED THEN INSERT ({_DAILY_COLUMNS})
    VALUES (d.user_id, d.date_key, d.workout_type, d.sessions, d.minutes, d.calories)"""


_LAST_DAY = "(SELECT coalesce(max(date_key), 0) FROM fact_daily_activity)"
_DAY_ORDER = "date_key, user_id, workout_type"  # the primary key's order


def _fresh_days(days: str, distinct: bool) -> str:
    """Return what the staged fresh sessions of ``days`` add to daily activity."""
    if distinct:  # one session per key: nothing to sum (summing measured ~0.8 µs a session)
        counts = "1 AS sessions, duration_minutes AS minutes, calories"
        return f"SELECT {DAILY_KEY}, {counts} FROM stage_sessions WHERE {days}"
    counts = "count(*) AS sessions, sum(duration_minutes) AS minutes, sum(calories) AS calories"
    return f"SELECT {DAILY_KEY}, {counts} FROM stage_sessions WHERE {days} GROUP BY {_DAY_ORDER}"


def _daily_from_fresh(distinct: bool) -> str:
    """Count freshly appended sessions (still staged) into their days.

    Days after the table's last day are new: their rows are inserted with no lookup first.
    The MERGE only inserts days up to that last day, so both statements see the same one.
    """
    ended = "status = 'ended' AND date_key"
    known = _daily_merge(_fresh_days(f"{ended} <= {_LAST_DAY}", distinct), emptying=False)
    new = _fresh_days(f"{ended} > {_LAST_DAY}", distinct)
    return f"{known}; INSERT INTO fact_daily_activity ({_DAILY_COLUMNS}) {new}"


DAILY_FROM_FRESH = {distinct: _daily_from_fresh(distinct) for distinct in (False, True)}
"""By whether the batch's (user, day, workout type) keys are all distinct."""

DAILY_FROM_CHANGES = _daily_merge(
    f"SELECT {DAILY_KEY}, sum(sessions) AS sessions, sum(duration_minutes) AS minutes,"
    f" sum(calories) AS calories FROM {DAILY_CHANGES} GROUP BY {_DAY_ORDER}"
    # A session replaced by one that counts the same changes nothing.
    " HAVING (sum(sessions), sum(duration_minutes), sum(calories)) <> (0, 0, 0)"
)
"""Apply the deltas the session upsert noted."""

RECOUNT_DAILY = f"""
SELECT {DAILY_KEY}, count(*)::integer, sum(duration_minutes), sum(calories)
FROM fact_workout_session WHERE status = 'ended' GROUP BY {DAILY_KEY}"""
"""fact_daily_activity as counted from scratch (for checks; runs keep it by deltas)."""


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
        "session_id uuid, user_id text, workout_type text, date_key integer, status text,"
        " start_ms bigint, end_ms bigint, duration_minutes numeric, calories numeric,"
        " weight_kg float8, weight_source text, updated_ms bigint",
        _session_merge(),
        "session_id::text",
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
STAGING = [
    *(f"CREATE TEMP TABLE {t.stage} ({t.columns}) ON COMMIT DROP" for t in TARGETS.values()),
    f"CREATE TEMP TABLE {DAILY_CHANGES} (user_id text, date_key integer, workout_type text,"
    " sessions integer, duration_minutes numeric, calories numeric) ON COMMIT DROP",
]
"""This transaction's staging tables: temporary, so never WAL-logged, and gone at commit."""
