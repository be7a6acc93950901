"""Run the ETL on a cron expression (default ``0 2 * * *``, nightly at 02:00) until stopped.

Times are the host's local time (set ``TZ`` to change it), so "02:00" means what an operator
expects, daylight-saving changes included (croniter handles them). The process keeps the
embedded warehouse server up, so ``psql`` and ``python -m etl report`` work meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from croniter import croniter

from etl import EtlError

log = logging.getLogger(__name__)

WAIT_SLICE_SECONDS = 5.0


class BadSchedule(EtlError):
    """The cron expression can't be understood."""


def check(expression: str) -> None:
    """Raise ``BadSchedule`` unless ``expression`` is a valid five-field cron expression."""
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise BadSchedule(f"not a five-field cron expression: {expression!r}")


def next_fire(expression: str, after: dt.datetime) -> dt.datetime:
    """Return the first time after ``after`` that ``expression`` names."""
    return croniter(expression, after).get_next(dt.datetime)


def now() -> dt.datetime:
    """Return the current local time, aware (so croniter sees daylight-saving changes)."""
    return dt.datetime.now().astimezone()


def serve(
    expression: str,
    run_once: Callable[[], None],
    stop: threading.Event,
    clock: Callable[[], dt.datetime] = now,
) -> None:
    """Call ``run_once`` at every time ``expression`` names, until ``stop`` is set."""
    check(expression)
    while not stop.is_set():
        fire = next_fire(expression, clock())
        log.info("next ETL run at %s", fire.isoformat(), extra={"etl.next_run": fire.isoformat()})
        if _sleep_until(fire, stop, clock):
            run_once()


def _sleep_until(moment: dt.datetime, stop: threading.Event, clock) -> bool:
    """Wait until ``moment`` (re-reading the clock, which may jump); False if stopped first."""
    while not stop.is_set():
        remaining = (moment - clock()).total_seconds()
        if remaining <= 0:
            return True
        stop.wait(min(remaining, WAIT_SLICE_SECONDS))
    return False
