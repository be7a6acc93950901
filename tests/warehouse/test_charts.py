"""The warehouse's charts tell the truth about idle days: in process, no warehouse needed."""

from __future__ import annotations

import datetime as dt

from etl.report import _draw, _series, x_limits
from etl.views import REPORTS

DAILY = ["date", "sessions", "active_users", "minutes", "calories"]
WEEKLY = ["week_start", "user_id", "username", "sessions", "active_days", "minutes", "calories"]


def test_days_without_workouts_are_zero_not_a_line_across_them():
    chart = REPORTS["daily_activity"].chart
    rows = [(dt.date(2025, 3, 1), 2, 1, 60, 300.0), (dt.date(2025, 3, 4), 1, 1, 30, 120.0)]
    (points,) = _series(chart, DAILY, rows).values()
    assert points == [
        (dt.date(2025, 3, 1), 300.0),
        (dt.date(2025, 3, 2), 0.0),
        (dt.date(2025, 3, 3), 0.0),
        (dt.date(2025, 3, 4), 120.0),
    ]


def test_each_user_gets_a_zero_for_every_week_of_the_range_they_skipped():
    chart = REPORTS["weekly_activity"].chart
    monday = dt.date(2025, 3, 3)
    rows = [
        (monday, "a", "alice", 3, 2, 90, 500.0),
        (monday + dt.timedelta(weeks=2), "a", "alice", 1, 1, 30, 150.0),
        (monday + dt.timedelta(weeks=1), "b", "bob", 2, 2, 60, 400.0),
    ]
    series = _series(chart, WEEKLY, rows)
    weeks = [monday + dt.timedelta(weeks=i) for i in range(3)]
    assert series == {
        "alice": list(zip(weeks, [90.0, 0.0, 30.0], strict=True)),
        "bob": list(zip(weeks, [0.0, 60.0, 0.0], strict=True)),
    }


def test_one_week_gets_an_axis_of_one_week_not_years(tmp_path):
    chart = REPORTS["weekly_activity"].chart
    monday = dt.date(2026, 11, 30)
    series = _series(chart, WEEKLY, [(monday, "a", "alice", 1, 1, 45, 200.0)])
    low, high = x_limits(chart, series)
    assert high - low == dt.timedelta(weeks=1)
    assert low < dt.datetime(2026, 11, 30) < high
    path = tmp_path / "week.png"
    _draw("weekly_activity", chart, series, path)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_cumulative_percentage_is_not_zero_filled():
    chart = REPORTS["goal_attainment"].chart
    columns = ["date", "goals_set", "goals_achieved", "attainment_percent"]
    rows = [(dt.date(2025, 1, 1), 2, 1, 50.0), (dt.date(2025, 1, 3), 2, 2, 75.0)]
    (points,) = _series(chart, columns, rows).values()
    assert [value for _, value in points] == [50.0, 75.0]
