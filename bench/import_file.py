"""How fast files import through a gateway, and what importing does to everyone's reads.

Starts a private stack (2 replicas of each service, one gateway; temporary directory, free
ports) and imports, one request per file, as one user:

- a workouts CSV of ``--rows`` rows;
- ``--files`` GPX, TCX and FIT files (a third each) of ``--minutes`` minutes at 1 Hz.

It prints activities/s for each, and the p99 of another user's statistics reads (``--readers``
clients, open loop) idle and while the files import (target of issue 18: at most 2x idle).
The archive benchmark of issue 18 (2,000 activities as a job) builds on this once jobs exist.

    .venv/bin/python -m bench.import_file
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.harness import client
from bench.harness.readers import p99_while
from bench.harness.seeding import Account, new_account
from tests.support import activity_files as files
from tests.support.stack import gateway_tier, make_replicas, running

T = TypeVar("T")

MAKERS = (("gpx", files.gpx), ("tcx", files.tcx), ("fit", files.fit))
WARM_UP_SECONDS = 2.0  # reads before the timed ones: a fresh stack's first open connections


def workouts_csv(rows: int) -> bytes:
    """Return a workouts CSV of ``rows`` daily runs, the newest yesterday."""
    first = dt.date.today() - dt.timedelta(days=rows)
    lines = ["date,start_time,duration,type,distance,calories"]
    lines += [f"{first + dt.timedelta(days=i)},07:00,42,running,7.5," for i in range(rows)]
    return "\n".join(lines).encode()


def track_files(count: int, minutes: float) -> list[tuple[str, bytes]]:
    """Return ``count`` activity files, one a day before the CSV's days, formats in turn."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=5000)
    made = []
    for i in range(count):
        kind, maker = MAKERS[i % len(MAKERS)]
        made.append((f"a{i}.{kind}", maker(start + dt.timedelta(days=i), minutes)))
    return made


def upload(gateway: str, user: Account, name: str, data: bytes) -> dict:
    """Import one file as ``user``; return the answer (a summary, or a job to follow)."""
    return client.upload(f"{gateway}/users/{user.user_id}/imports", name, data, user.token)


def another_users_p99(gateway: str, readers: int, during: Callable[[], T]) -> tuple[float, T]:
    """Return the p99 (ms) of another user's statistics reads while ``during()`` runs."""
    reader = new_account(gateway)
    url = f"{gateway}/users/{reader.user_id}/statistics"
    # Not timed: a fresh stack's first reads open connections on every hop (30-40 ms each).
    p99_while(url, reader.token, readers, 0.1, lambda: time.sleep(WARM_UP_SECONDS))
    p99, result = p99_while(url, reader.token, readers, 0.1, during)
    return p99 * 1000, result


def add_reader_options(parser: argparse.ArgumentParser) -> None:
    """Add the options of the reads timed meanwhile: another user's statistics."""
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=60)
    add_reader_options(parser)
    args = parser.parse_args()

    tracks = track_files(args.files, args.minutes)
    table = workouts_csv(args.rows)
    size = sum(len(data) for _, data in tracks) / len(tracks) / 2**20
    print(f"{args.files} files of {args.minutes:g} min at 1 Hz (mean {size:.2f} MiB)")
    print(f"a CSV of {args.rows} rows")
    replicas = [*make_replicas(2), *gateway_tier(1)]
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), replicas, {}) as stack:
        gateway = stack.replicas_of("gateway")[0].url
        user = new_account(gateway)
        idle, _ = another_users_p99(gateway, args.readers, lambda: time.sleep(args.idle_seconds))

        def import_csv() -> float:
            started = time.perf_counter()
            summary = upload(gateway, user, "history.csv", table)
            assert summary["imported"] == args.rows, summary
            return time.perf_counter() - started

        def import_tracks() -> float:
            started = time.perf_counter()
            for name, data in tracks:
                assert upload(gateway, user, name, data)["imported"] == 1, name
            return time.perf_counter() - started

        csv_p99, csv_seconds = another_users_p99(gateway, args.readers, import_csv)
        tracks_p99, tracks_seconds = another_users_p99(gateway, args.readers, import_tracks)
    print(f"CSV:    {args.rows / csv_seconds:7.1f} activities/s ({csv_seconds:.1f} s)")
    print(f"tracks: {args.files / tracks_seconds:7.1f} activities/s ({tracks_seconds:.1f} s)")
    print(
        f"statistics p99 of another user: idle {idle:.1f} ms; during the CSV {csv_p99:.1f} ms "
        f"(x{csv_p99 / idle:.2f}); during the tracks {tracks_p99:.1f} ms (x{tracks_p99 / idle:.2f})"
    )


if __name__ == "__main__":
    main()
