"""Print a reporting view as a text table, or draw a time-series view as a PNG chart."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from pathlib import Path
from typing import Any

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from etl import EtlError
from etl.views import REPORTS, Chart, Report

CHART_ROWS_LIMIT = 10_000


class NotATimeSeries(EtlError):
    """The report asked to be drawn has no time axis."""


def fetch(
    conn: Connection, report: Report, limit: int, order_by: str | None = None
) -> tuple[list[str], list[tuple]]:
    """Return the column names and up to ``limit`` rows of the report's view."""
    query = sql.SQL("SELECT * FROM {} ORDER BY {} LIMIT %s").format(
        sql.Identifier(report.view), sql.SQL(order_by or report.order_by)
    )
    with conn.cursor() as cur:
        cur.execute(query, (limit,))
        return [column.name for column in cur.description], cur.fetchall()


def format_table(columns: list[str], rows: list[tuple]) -> str:
    """Return rows as an aligned text table (numbers right-aligned), psql-style."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(columns)]
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    body = [line(row) for row in cells]
    return "\n".join([line(columns), rule, *body, f"({len(rows)} rows)"])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float | decimal.Decimal) and value is not True)


def write_chart(conn: Connection, name: str, path: Path) -> None:
    """Draw the time-series report ``name`` over its whole range into a PNG file."""
    report = REPORTS[name]
    if report.chart is None:
        raise NotATimeSeries(
            f"{name} is not a time series; charts exist for: {', '.join(charts())}"
        )
    chart = report.chart
    columns, rows = fetch(conn, report, CHART_ROWS_LIMIT, order_by=f"{chart.x}")
    series = _series(chart, columns, rows)
    _draw(name, chart, series, path)


def charts() -> list[str]:
    """Return the reports that can be drawn."""
    return [name for name, report in REPORTS.items() if report.chart]


def _series(chart: Chart, columns: list[str], rows: list[tuple]) -> dict[str, list[tuple]]:
    """Group (x, y) points by series, keeping the ``max_series`` largest by total y, each
    with a 0 at every step of the whole range it lacks when the chart says so."""
    x, y = columns.index(chart.x), columns.index(chart.y)
    label = columns.index(chart.series) if chart.series else None
    points: dict[str, dict[Any, float]] = defaultdict(dict)
    for row in rows:
        key = str(row[label]) if label is not None else chart.y
        points[key][row[x]] = points[key].get(row[x], 0.0) + float(row[y] or 0)
    biggest = sorted(points, key=lambda key: -sum(points[key].values()))[: chart.max_series]
    steps = _steps(chart, [moment for key in biggest for moment in points[key]])
    return {
        key: sorted((dict.fromkeys(steps, 0.0) | points[key]).items())
        if chart.zero_fill
        else sorted(points[key].items())
        for key in biggest
    }


def _steps(chart: Chart, moments: list[Any]) -> list[Any]:
    """Return every step from the first of ``moments`` to the last."""
    if not moments:
        return []
    first, last = min(moments), max(moments)
    return [first + chart.step * i for i in range((last - first) // chart.step + 1)]


def x_limits(chart: Chart, series: dict[str, list[tuple]]) -> tuple[Any, Any]:
    """Return the x axis's range: the data's, and half a step more on each side.

    Left to matplotlib, a single week got an axis from 2025 to 2029.
    """
    moments = [_instant(moment) for points in series.values() for moment, _ in points]
    if not moments:
        moments = [_instant(dt.date.today())]
    return min(moments) - chart.step / 2, max(moments) + chart.step / 2


def _instant(moment: dt.date) -> dt.datetime:
    """A date as its midnight: a date minus half a day would still be that date."""
    if isinstance(moment, dt.datetime):
        return moment
    return dt.datetime.combine(moment, dt.time())


def _draw(name: str, chart: Chart, series: dict[str, list[tuple]], path: Path) -> None:
    import matplotlib  # imported here: only charts need it, and it is slow to import

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(10, 5))
    for label, points in series.items():
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axes.set_xlim(*x_limits(chart, series))
    axes.set_ylim(bottom=0)  # an amount: its axis starts at zero
    axes.set_title(name.replace("_", " "))
    axes.set_xlabel(chart.x)
    axes.set_ylabel(chart.y)
    axes.grid(True, alpha=0.3)
    if chart.series:
        axes.legend(title=chart.series, fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
