"""The warehouse's tables, created and upgraded by the ETL itself through numbered migrations.

A star schema: dimensions (user, date, workout type) and facts (workout session, daily activity
per user, day and workout type, goal snapshot, group session), plus the ETL's own bookkeeping
(``etl_runs``, ``etl_watermarks``, ``rejected_rows``). Facts hold natural keys (the sources'
UUIDs, dates as ``yyyymmdd``) rather than surrogate keys: the sources' ids never change, and a
re-run then upserts the very same rows. Foreign keys are not enforced in the database: the
ETL only loads a fact whose user and workout type it knows, and rejects the rest, and bulk loads
stay fast. Migrations only ever get appended; each runs once, in its own transaction.
"""

from __future__ import annotations

from psycopg2.extensions import connection as Connection

from etl import EtlError, views

# Any fixed 64-bit numbers would do: one advisory lock serialises migrations, one ETL runs.
MIGRATION_LOCK = 0x46495445_4D494752
RUN_LOCK = 0x46495445_52554E53
MIN_SERVER_VERSION = 150000  # MERGE (etl.merges)

STAR_SCHEMA = """
CREATE TABLE dim_user (
    user_id text PRIMARY KEY,
    username text NOT NULL,
    weight_kg double precision,
    registered_at timestamptz NOT NULL,
    source_updated_at timestamptz NOT NULL
);
COMMENT ON TABLE dim_user IS 'Users (no e-mail, no password hash: reporting does not need them).';

CREATE TABLE dim_date (
    date_key integer PRIMARY KEY,
    date date NOT NULL UNIQUE,
    year smallint NOT NULL,
    month smallint NOT NULL,
    day smallint NOT NULL,
    iso_year smallint NOT NULL,
    iso_week smallint NOT NULL,
    iso_day_of_week smallint NOT NULL,
    week_start date NOT NULL,
    is_weekend boolean NOT NULL
);
COMMENT ON TABLE dim_date IS 'Every UTC date a fact refers to; date_key is yyyymmdd.';

CREATE TABLE dim_workout_type (
    workout_type text PRIMARY KEY,
    met numeric NOT NULL
);

CREATE TABLE fact_workout_session (
    session_id text PRIMARY KEY,
    user_id text NOT NULL,
    workout_type text NOT NULL,
    date_key integer NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'ended')),
    start_time timestamptz NOT NULL,
    end_time timestamptz,
    duration_minutes numeric,
    calories numeric,
    weight_kg double precision,
    weight_source text,
    source_updated_at timestamptz NOT NULL
);
COMMENT ON TABLE fact_workout_session IS 'One row per session; date_key: its UTC start date.';

CREATE TABLE fact_daily_activity (
    user_id text NOT NULL,
    date_key integer NOT NULL,
    workout_type text NOT NULL,
    sessions integer NOT NULL,
    minutes numeric NOT NULL,
    calories numeric NOT NULL,
    -- Day first: a run adds new days, so its rows land at the end of the index.
    PRIMARY KEY (date_key, user_id, workout_type)
);
COMMENT ON TABLE fact_daily_activity IS 'Ended sessions per user, UTC day and workout type.';

CREATE TABLE fact_goal_snapshot (
    goal_id text NOT NULL,
    date_key integer NOT NULL,
    user_id text NOT NULL,
    goal_type text NOT NULL,
    workout_type text,
    target_value numeric NOT NULL,
    progress numeric NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    achieved_at timestamptz,
    target_date date NOT NULL,
    source_updated_at timestamptz NOT NULL,
    PRIMARY KEY (goal_id, date_key)
);
COMMENT ON TABLE fact_goal_snapshot IS 'A goal as it stood at the end of each day it changed.';

CREATE TABLE fact_group_session (
    group_session_id text PRIMARY KEY,
    date_key integer,
    workout_type text,
    started_at timestamptz,
    ended_at timestamptz,
    participants integer NOT NULL,
    document jsonb NOT NULL,
    source_updated_at timestamptz NOT NULL
);
COMMENT ON TABLE fact_group_session IS 'Saved live group workouts, with the whole source document.';

CREATE TABLE rejected_rows (
    source text NOT NULL,
    source_key text NOT NULL,
    reason_code text NOT NULL,
    reason text NOT NULL,
    raw jsonb NOT NULL,
    run_id bigint NOT NULL,
    PRIMARY KEY (source, source_key)
);
COMMENT ON TABLE rejected_rows IS
    'Source rows that could not be loaded, as they are now; run_id: the run that first saw so.';

CREATE TABLE etl_runs (
    run_id bigserial PRIMARY KEY,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    outcome text NOT NULL DEFAULT 'running',
    extract_until timestamptz NOT NULL,
    full_reload boolean NOT NULL,
    counts jsonb NOT NULL DEFAULT '{}',
    watermarks jsonb NOT NULL DEFAULT '{}',
    error text
);

CREATE TABLE etl_watermarks (
    source text PRIMARY KEY,
    updated_at timestamptz NOT NULL,
    last_key text NOT NULL
);
"""

UUID_SESSION_KEYS = r"""
-- A uuid key is 16 bytes compared with memcmp: inserting sessions measured about a quarter
-- cheaper than with text keys. Sessions whose id is no UUID (the activity service writes
-- none) become rejections, as the transform now makes them, and leave the days they counted on.
CREATE TEMP TABLE non_uuid_sessions ON COMMIT DROP AS
SELECT * FROM fact_workout_session
WHERE session_id !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

INSERT INTO rejected_rows (source, source_key, reason_code, reason, raw, run_id)
SELECT 'sessions', session_id, 'bad_key',
       'the session id is not a UUID in lowercase (raw: the warehouse row)', to_jsonb(s),
       (SELECT coalesce(max(run_id), 0) FROM etl_runs)
FROM non_uuid_sessions s
ON CONFLICT (source, source_key) DO NOTHING;

DELETE FROM fact_workout_session WHERE session_id IN (SELECT session_id FROM non_uuid_sessions);

DELETE FROM fact_daily_activity d USING non_uuid_sessions s
WHERE d.user_id = s.user_id AND d.date_key = s.date_key;

INSERT INTO fact_daily_activity
SELECT user_id, date_key, workout_type, count(*), sum(duration_minutes), sum(calories)
FROM fact_workout_session
WHERE status = 'ended' AND (user_id, date_key) IN (SELECT user_id, date_key FROM non_uuid_sessions)
GROUP BY user_id, date_key, workout_type;

ALTER TABLE fact_workout_session ALTER COLUMN session_id TYPE uuid USING session_id::uuid;
"""

DISCARDED_SESSIONS = """
-- A workout shorter than the minimum ends "discarded": kept, counted in no day's totals.
ALTER TABLE fact_workout_session DROP CONSTRAINT fact_workout_session_status_check;
ALTER TABLE fact_workout_session ADD CONSTRAINT fact_workout_session_status_check
    CHECK (status IN ('active', 'ended', 'discarded'));
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "star schema", STAR_SCHEMA),
    (2, "reporting views", views.VIEWS),
    (3, "uuid session keys", UUID_SESSION_KEYS),
    (4, "discarded sessions", DISCARDED_SESSIONS),
]
"""(version, description, SQL): append only; never edit one that has shipped."""


def migrate(conn: Connection) -> list[int]:
    """Apply the migrations this warehouse lacks; return their versions."""
    if conn.server_version < MIN_SERVER_VERSION:
        raise EtlError(f"the warehouse runs PostgreSQL {conn.server_version}; the ETL needs 15+")
    applied = []
    for version, description, sql in MIGRATIONS:
        with conn, conn.cursor() as cur:
            # Two ETL processes starting at once must not both create the tables.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
            if cur.fetchone():
                continue
            cur.execute(sql)
            cur.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                (version, description),
            )
            applied.append(version)
    return applied
