"""Reporting views over the star schema, and what ``python -m etl report NAME`` knows of each.

Dates are UTC days throughout. Totals come from ``fact_daily_activity`` (ended sessions only),
rounded the way the activity service's ``/users/{id}/statistics`` rounds them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

VIEWS = """
CREATE VIEW user_totals AS
SELECT u.user_id, u.username,
       coalesce(sum(a.sessions), 0)::integer AS total_workouts,
       round(coalesce(sum(a.minutes), 0), 2) AS total_duration,
       round(coalesce(sum(a.calories), 0), 1) AS total_calories_burned,
       CASE WHEN sum(a.sessions) > 0
            THEN round(round(sum(a.minutes), 2) / sum(a.sessions), 2) ELSE 0 END
           AS average_session_duration
FROM dim_user u LEFT JOIN fact_daily_activity a USING (user_id)
GROUP BY u.user_id, u.username;
COMMENT ON VIEW user_totals IS 'Per user, what GET /users/{id}/statistics answers.';

CREATE VIEW daily_activity AS
SELECT d.date, sum(a.sessions)::integer AS sessions,
       count(DISTINCT a.user_id)::integer AS active_users,
       round(sum(a.minutes), 2) AS minutes, round(sum(a.calories), 1) AS calories
FROM fact_daily_activity a JOIN dim_date d USING (date_key)
GROUP BY d.date;

CREATE VIEW weekly_activity AS
SELECT d.week_start, a.user_id, u.username,
       sum(a.sessions)::integer AS sessions, count(DISTINCT d.date)::integer AS active_days,
       round(sum(a.minutes), 2) AS minutes, round(sum(a.calories), 1) AS calories
FROM fact_daily_activity a
JOIN dim_date d USING (date_key)
JOIN dim_user u USING (user_id)
GROUP BY d.week_start, a.user_id, u.username;
COMMENT ON VIEW weekly_activity IS 'Ended sessions per user per ISO week (week_start is a Monday).';

CREATE VIEW calories_by_workout_type AS
SELECT t.workout_type, t.met,
       coalesce(sum(a.sessions), 0)::integer AS sessions,
       round(coalesce(sum(a.minutes), 0), 2) AS minutes,
       round(coalesce(sum(a.calories), 0), 1) AS calories,
       round(sum(a.calories) / nullif(sum(a.minutes), 0) * 60, 1) AS calories_per_hour,
       round(100 * sum(a.calories) / nullif(sum(sum(a.calories)) OVER (), 0), 1)
           AS percent_of_calories
FROM dim_workout_type t LEFT JOIN fact_daily_activity a USING (workout_type)
GROUP BY t.workout_type, t.met;

CREATE VIEW goal_progress AS
SELECT DISTINCT ON (g.goal_id)
       g.goal_id, g.user_id, u.username, g.goal_type, g.workout_type, g.target_value,
       round(g.progress, 2) AS progress,
       round(100 * g.progress / g.target_value, 1) AS percent,
       g.status, g.achieved_at IS NOT NULL AS achieved, g.achieved_at, g.created_at,
       g.target_date, d.date AS as_of
FROM fact_goal_snapshot g
JOIN dim_user u USING (user_id)
JOIN dim_date d USING (date_key)
ORDER BY g.goal_id, g.date_key DESC;
COMMENT ON VIEW goal_progress IS 'Each goal as of its latest snapshot.';

CREATE VIEW goal_attainment AS
WITH events AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS date, 1 AS created, 0 AS achieved
    FROM goal_progress
    UNION ALL
    SELECT (achieved_at AT TIME ZONE 'UTC')::date, 0, 1 FROM goal_progress WHERE achieved
), per_day AS (
    SELECT date, sum(created)::integer AS goals_created, sum(achieved)::integer AS goals_achieved
    FROM events GROUP BY date
)
SELECT date, goals_created, goals_achieved,
       (sum(goals_created) OVER w)::integer AS goals_to_date,
       (sum(goals_achieved) OVER w)::integer AS achieved_to_date,
       round(100.0 * sum(goals_achieved) OVER w / nullif(sum(goals_created) OVER w, 0), 1)
           AS attainment_percent
FROM per_day
WINDOW w AS (ORDER BY date);
COMMENT ON VIEW goal_attainment IS 'Goals set and achieved per day, and the share achieved so far.';

CREATE VIEW leaderboard AS
SELECT rank() OVER (ORDER BY total_calories_burned DESC, total_duration DESC)::integer AS rank,
       username, total_workouts, total_duration, total_calories_burned
FROM user_totals
WHERE total_workouts > 0;
"""


WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class Chart:
    """How to draw a time-series view: ``y`` against ``x``, one line per ``series`` value.

    ``step``: the x axis's unit (a day, a week). An activity chart (``zero_fill``) shows a step
    without a row as 0, so a line never joins two active days across idle ones.
    """

    x: str
    y: str
    series: str | None = None
    max_series: int = 8
    step: dt.timedelta = dt.timedelta(days=1)
    zero_fill: bool = False


@dataclass(frozen=True)
class Report:
    """A view ``python -m etl report`` can print, in which order, and whether it can be drawn."""

    view: str
    order_by: str
    about: str
    chart: Chart | None = None


REPORTS: dict[str, Report] = {
    report.view: report
    for report in (
        Report(
            "weekly_activity",
            "week_start DESC, minutes DESC",
            "sessions, minutes and calories per user per week",
            Chart("week_start", "minutes", "username", step=WEEK, zero_fill=True),
        ),
        Report(
            "daily_activity",
            "date DESC",
            "sessions, active users, minutes and calories per day",
            Chart("date", "calories", zero_fill=True),
        ),
        Report(
            "calories_by_workout_type",
            "calories DESC, workout_type",
            "sessions, minutes and calories per workout type",
        ),
        Report(
            "goal_progress",
            "as_of DESC, percent DESC",
            "each goal's latest progress",
        ),
        Report(
            "goal_attainment",
            "date DESC",
            "goals set and achieved per day, cumulative attainment",
            Chart("date", "attainment_percent"),
        ),
        Report("leaderboard", "rank, username", "users ranked by calories burned"),
        Report("user_totals", "username", "per-user totals, as /users/{id}/statistics"),
    )
}
