"""The ``run`` and ``schedule`` commands: the ones that read the services' stores."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import Any

from etl import SERVICE_NAME, pipeline, report, schedule
from etl.sources import Source, default_sources
from etl.warehouse import Warehouse
from fitness import logs
from fitness.config import redacted

log = logging.getLogger("etl")

PROGRESS_INTERVAL_SECONDS = 1.0


def options_from(settings: dict[str, Any], args: argparse.Namespace) -> pipeline.RunOptions:
    """Return the run options the settings and command line ask for."""
    return pipeline.RunOptions(
        full=getattr(args, "full", False),
        until=getattr(args, "until", None),
        settle_seconds=settings["ETL_SETTLE_SECONDS"],
        pause_before_commit=settings["ETL_DEBUG_PAUSE_SECONDS"],
    )


def run_now(settings: dict[str, Any], warehouse: Warehouse, args: argparse.Namespace) -> int:
    """Run the ETL once and print what it did."""
    options = options_from(settings, args)
    if not args.quiet:
        options.progress = _progress_printer()
    result = pipeline.run(warehouse, default_sources(settings), options)
    print(summary(result))
    return 0


def _progress_printer() -> pipeline.Progress:
    last = {"at": time.monotonic()}

    def progress(name: str, stats: pipeline.SourceStats) -> None:
        if time.monotonic() - last["at"] >= PROGRESS_INTERVAL_SECONDS:
            last["at"] = time.monotonic()
            print(f"  {name}: {stats.read:,} read, {stats.rejected:,} rejected", flush=True)

    return progress


def summary(result: pipeline.RunResult) -> str:
    """Return a run's outcome as a few lines of text."""
    head = f"run {result.run_id} succeeded in {result.seconds:.3f} s"
    columns = ["source", "read", "loaded", "rejected", "retried"]
    rows = [
        (name, stats.read, stats.loaded, stats.rejected, stats.retried)
        for name, stats in result.sources.items()
    ]
    return head + "\n" + report.format_table(columns, rows)


def run_on_schedule(
    settings: dict[str, Any], warehouse: Warehouse, args: argparse.Namespace
) -> int:
    """Run the ETL on the cron schedule until SIGTERM or Ctrl-C, logging JSON lines."""
    logs.configure_logging(SERVICE_NAME, settings["LOG_LEVEL"], settings["LOG_FILE"])
    expression = settings["ETL_SCHEDULE"]
    schedule.check(expression)
    log.info("warehouse at %s", redacted(warehouse.url), extra={"etl.schedule": expression})
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sources: list[Source] = []  # built once: each holds connections for the process's life

    def run_once() -> None:
        logged_run(settings, warehouse, sources)

    if args.now:
        run_once()
    schedule.serve(expression, run_once, stop)
    log.info("scheduler stopped")
    return 0


def logged_run(settings: dict[str, Any], warehouse: Warehouse, sources: list[Source]) -> None:
    """Run the ETL once and log the outcome; a failure is logged, never raised."""
    options = options_from(settings, argparse.Namespace())
    try:
        sources[:] = sources or default_sources(settings)
        result = pipeline.run(warehouse, sources, options)
    except pipeline.RunInProgress:
        log.warning("skipped: another ETL run is in progress")
        return
    except Exception:  # the next night tries again; this one is on record in the log
        log.exception("ETL run failed")
        return
    log.info(
        "ETL run %s succeeded: %s rows read, %s loaded",
        result.run_id,
        result.read,
        result.loaded,
        extra={
            "event.duration": int(result.seconds * 1e9),
            "etl.run_id": result.run_id,
            "etl.read": result.read,
            "etl.loaded": result.loaded,
            "etl.rejected": sum(s.rejected for s in result.sources.values()),
        },
    )
