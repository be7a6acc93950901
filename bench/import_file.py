"""How fast files import through a gateway, and what importing does to everyone's reads.

Starts a private stack (2 replicas of each service, one gateway; temporary directory, free
ports) and imports, one request per file, as one user:

- a workouts CSV of ``--rows`` rows;
- ``--files`` GPX, TCX and FIT files (a third each) of ``--minutes`` minutes at 1 Hz.

It prints activities/s for each, and the p99 of another user's statistics reads (``--readers``
clients, open loop) idle and while the files import (target of issue 18: at most 2x idle).
The archive benchmark of issue 18 (2,000 activities as a job) builds on this once jobs exist.

    .venv/bin/python bench/import_file.py
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from login_burst import read_latencies

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the stack helpers and file makers the tests use

import activity_files as files  # noqa: E402
from conftest import GatewayApi, gateway_tier, make_replicas, running  # noqa: E402

MAKERS = (("gpx", files.gpx), ("tcx", files.tcx), ("fit", files.fit))


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


def upload(api: GatewayApi, user_id: str, token: str, name: str, data: bytes) -> dict:
    answer = requests.post(
        f"{api.user_url}/users/{user_id}/imports",
        files={"file": (name, data)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    answer.raise_for_status()
    return answer.json()


def p99_while(api: GatewayApi, readers: int, during) -> tuple[float, object]:
    """Return the p99 (ms) of another user's statistics reads while ``during()`` runs."""
    user_id, token = api.new_user()
    url = f"{api.user_url}/users/{user_id}/statistics"
    stop = threading.Event()
    with ThreadPoolExecutor(readers) as pool:
        started = [pool.submit(read_latencies, url, token, 0.1, stop) for _ in range(readers)]
        try:
            result = during()
        finally:
            stop.set()
        samples = [t for reader in started for t in reader.result()]
    return statistics.quantiles(samples, n=100)[98] * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=10)
    args = parser.parse_args()

    tracks = track_files(args.files, args.minutes)
    table = workouts_csv(args.rows)
    size = sum(len(data) for _, data in tracks) / len(tracks) / 2**20
    print(f"{args.files} files of {args.minutes:g} min at 1 Hz (mean {size:.2f} MiB)")
    print(f"a CSV of {args.rows} rows")
    replicas = [*make_replicas(2), *gateway_tier(1)]
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), replicas, {}) as stack:
        api = GatewayApi(stack)
        user_id, token = api.new_user()
        idle, _ = p99_while(api, args.readers, lambda: time.sleep(args.idle_seconds))

        def import_csv() -> float:
            started = time.perf_counter()
            summary = upload(api, user_id, token, "history.csv", table)
            assert summary["imported"] == args.rows, summary
            return time.perf_counter() - started

        def import_tracks() -> float:
            started = time.perf_counter()
            for name, data in tracks:
                assert upload(api, user_id, token, name, data)["imported"] == 1, name
            return time.perf_counter() - started

        csv_p99, csv_seconds = p99_while(api, args.readers, import_csv)
        tracks_p99, tracks_seconds = p99_while(api, args.readers, import_tracks)
    print(f"CSV:    {args.rows / csv_seconds:7.1f} activities/s ({csv_seconds:.1f} s)")
    print(f"tracks: {args.files / tracks_seconds:7.1f} activities/s ({tracks_seconds:.1f} s)")
    print(
        f"statistics p99 of another user: idle {idle:.1f} ms; during the CSV {csv_p99:.1f} ms "
        f"(x{csv_p99 / idle:.2f}); during the tracks {tracks_p99:.1f} ms (x{tracks_p99 / idle:.2f})"
    )


if __name__ == "__main__":
    main()
