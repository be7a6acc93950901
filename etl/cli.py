"""``python -m etl run|status|report|schedule|psql``: the ETL's command line."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

from etl import DEFAULTS, EtlError, report, schema
from etl.views import REPORTS
from etl.warehouse import Warehouse
from fitness.config import SettingFileMissing, load_settings, redacted

Command = Callable[[dict[str, Any], Warehouse, argparse.Namespace], int]


def parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    main = argparse.ArgumentParser(
        prog="python -m etl",
        description="The nightly ETL from the services' stores into the reporting warehouse.",
    )
    commands = main.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the ETL now")
    run.add_argument("--full", action="store_true", help="re-read every source row")
    run.add_argument("--until", type=_timestamp, help="read changes up to this time (ISO-8601)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    status = commands.add_parser("status", help="recent runs and where the warehouse is")
    status.add_argument("--limit", type=int, default=10)
    show = commands.add_parser("report", help="print a reporting view (or draw it)")
    show.add_argument("name", choices=sorted(REPORTS))
    show.add_argument("--limit", type=int, default=50)
    show.add_argument("--png", type=Path, help=f"draw it instead ({', '.join(report.charts())})")
    cron = commands.add_parser("schedule", help="run the ETL on FITNESS_ETL_SCHEDULE, forever")
    cron.add_argument("--now", action="store_true", help="also run once at start")
    commands.add_parser("psql", help="open psql on the warehouse")
    return main


def _timestamp(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    args = parser().parse_args(argv)
    try:
        settings = load_settings(DEFAULTS)
    except SettingFileMissing as exc:
        sys.exit(f"etl: {exc}")
    warehouse = Warehouse.from_settings(settings)
    try:
        return _command(args.command)(settings, warehouse, args)
    except (EtlError, psycopg2.OperationalError) as exc:
        sys.exit(f"etl: {exc}")
    finally:
        warehouse.release()


def _command(name: str) -> Command:
    if name in ("run", "schedule"):
        from etl import runner  # loads the services' packages: only these two need them

        return runner.run_now if name == "run" else runner.run_on_schedule
    return {"status": show_status, "report": show_report, "psql": open_psql}[name]


def show_status(settings: dict[str, Any], warehouse: Warehouse, args: argparse.Namespace) -> int:
    """Print where the warehouse is, how to connect, its recent runs and watermarks."""
    print(f"Warehouse: {redacted(warehouse.url)}")
    if warehouse.is_embedded:
        print(f"  embedded PostgreSQL, data in {warehouse.embedded_dir}")
        print("  it runs while an ETL process uses it (`python -m etl schedule` keeps it up)")
    psql = [redacted(part) for part in warehouse.psql_command()]
    print(f"Connect:   {' '.join(_quoted(part) for part in psql)}")
    print("           or: python -m etl psql")
    with contextlib.closing(warehouse.connect()) as conn:
        schema.migrate(conn)
        columns, rows = _recent_runs(conn, args.limit)
        print(f"\nRecent runs:\n{report.format_table(columns, rows)}")
        with conn.cursor() as cur:
            cur.execute("SELECT source, updated_at, last_key FROM etl_watermarks ORDER BY 1")
            marks = cur.fetchall()
        print(f"\nWatermarks:\n{report.format_table(['source', 'updated_at', 'key'], marks)}")
    return 0


def _quoted(part: str) -> str:
    return f"'{part}'" if any(c in part for c in " ?&") else part


def _recent_runs(conn, limit: int) -> tuple[list[str], list[tuple]]:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT run_id AS run, started_at AS started,
                   round(extract(epoch FROM finished_at - started_at)::numeric, 3) AS seconds,
                   outcome,
                   (SELECT sum((v->>'read')::numeric + (v->>'retried')::numeric)::bigint
                    FROM jsonb_each(counts) AS e(k, v)) AS read,
                   (SELECT sum((v->>'loaded')::numeric)::bigint
                    FROM jsonb_each(counts) AS e(k, v)) AS loaded,
                   (SELECT sum((v->>'rejected')::numeric)::bigint
                    FROM jsonb_each(counts) AS e(k, v)) AS rejected,
                   left(error, 60) AS error
            FROM etl_runs ORDER BY run_id DESC LIMIT %s
            """,
            (limit,),
        )
        return [column.name for column in cur.description], cur.fetchall()


def show_report(settings: dict[str, Any], warehouse: Warehouse, args: argparse.Namespace) -> int:
    """Print a reporting view, or write its chart."""
    with contextlib.closing(warehouse.connect()) as conn:
        schema.migrate(conn)
        if args.png:
            report.write_chart(conn, args.name, args.png)
            print(f"wrote {args.png}")
            return 0
        columns, rows = report.fetch(conn, REPORTS[args.name], args.limit)
    print(report.format_table(columns, rows))
    return 0


def open_psql(settings: dict[str, Any], warehouse: Warehouse, args: argparse.Namespace) -> int:
    """Run psql on the warehouse, keeping the embedded server up meanwhile."""
    # Interactive: no timeout, the user decides when it ends.
    return subprocess.run(warehouse.psql_command(), check=False).returncode
