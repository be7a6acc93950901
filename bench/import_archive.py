"""An archive import as a job: activities/s, the worker's peak memory, and everyone else's reads.

Starts a private stack (2 replicas of each service, one gateway; temporary directory, free
ports), makes a zip of ``--activities`` activity files (GPX, TCX and FIT in turn, ``--minutes``
minutes each, a point every second), uploads it as one user and follows the job to its end,
while another user's statistics are read by ``--readers`` clients every 0.1 s. It prints:

- activities/s from the 202 to ``done`` (target of issue 18: >= 50);
- the peak resident memory of each activity-service replica (its processes together: the
  gunicorn master, worker, and file-reading process), sampled every 0.1 s;
- the reads' p99 idle and during the job (target: at most 2x idle).

    .venv/bin/python -m bench.import_archive [--activities 300] [--minutes 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import psutil

from bench.harness.client import get_json
from bench.harness.seeding import new_account
from bench.import_file import MAKERS, add_reader_options, another_users_p99, upload
from tests.support.stack import gateway_tier, make_replicas, running

CACHE = Path.home() / ".cache" / "fitness-bench"


def archive(count: int, minutes: float) -> bytes:
    """Return a zip of ``count`` activity files, one a day, formats in turn.

    Made on every core (a FIT file takes fit_tool ~0.8 s to write) and kept in the user's
    cache directory: the next run with the same figures starts at once. The days are counted
    back from the day the archive was made, so a kept one is still all in the past.
    """
    cached = CACHE / f"archive-{count}-{minutes:g}min.zip"
    if cached.exists():
        return cached.read_bytes()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=count + 1)
    days = [start + dt.timedelta(days=i) for i in range(count)]
    with ProcessPoolExecutor() as pool:
        made = pool.map(_activity_file, range(count), days, [minutes] * count, chunksize=8)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
            for name, data in made:
                zipped.writestr(name, data)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(out.getvalue())
    return out.getvalue()


def _activity_file(i: int, day: dt.datetime, minutes: float) -> tuple[str, bytes]:
    kind, maker = MAKERS[i % len(MAKERS)]
    return f"activities/{i}.{kind}", maker(day, minutes)


def peak_memory(pids: dict[str, int], stop: threading.Event) -> dict[str, int]:
    """Sample each replica's process tree every 0.1 s until ``stop``; return peak RSS bytes."""
    peaks = dict.fromkeys(pids, 0)
    while not stop.wait(0.1):
        for name, pid in pids.items():
            try:
                root = psutil.Process(pid)
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                continue
            peaks[name] = max(peaks[name], rss)
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=30)
    add_reader_options(parser)
    args = parser.parse_args()

    data = archive(args.activities, args.minutes)
    print(
        f"archive: {args.activities} activities of {args.minutes:g} min at 1 Hz, "
        f"{len(data) / 2**20:.1f} MiB zipped"
    )
    replicas = [*make_replicas(2), *gateway_tier(1)]
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), replicas, {}) as stack:
        gateway = stack.replicas_of("gateway")[0].url
        user = new_account(gateway)
        pids = {r.name: stack.processes[r.name].pid for r in stack.replicas_of("activity_service")}

        def run_job() -> float:
            started = time.perf_counter()
            status = gateway + upload(gateway, user, "history.zip", data)["status_url"]
            while (job := get_json(status, user.token))["state"] not in ("done", "failed"):
                time.sleep(0.2)
            assert job["imported"] == args.activities, job
            return time.perf_counter() - started

        def run_job_watching_memory() -> tuple[float, dict[str, int]]:
            stop = threading.Event()
            with ThreadPoolExecutor(1) as pool:
                memory = pool.submit(peak_memory, pids, stop)
                try:
                    seconds = run_job()
                finally:
                    stop.set()
                return seconds, memory.result()

        idle, _ = another_users_p99(gateway, args.readers, lambda: time.sleep(args.idle_seconds))
        busy, (seconds, peaks) = another_users_p99(gateway, args.readers, run_job_watching_memory)
    print(f"job: {args.activities / seconds:.1f} activities/s ({seconds:.1f} s, 202 to done)")
    for name, peak in peaks.items():
        print(f"peak memory of {name} (all its processes): {peak / 2**20:.0f} MiB")
    print(
        f"statistics p99 of another user: idle {idle:.1f} ms, during {busy:.1f} ms "
        f"(x{busy / idle:.2f})"
    )


if __name__ == "__main__":
    main()
