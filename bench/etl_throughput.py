"""Measure the ETL: extract from the embedded MongoDB engine, transform and load 1,000,000 sessions.

Two parts, because the embedded engine can't hold a million sessions in reasonable time (a range
query there decodes the whole collection, so each extract batch costs a full scan):

1. extract: ``--extract-docs`` sessions written straight into an embedded activity store, then
   read back through the ETL's own source (sort + limit batches from the watermark);
2. transform + load: ``--sessions`` synthetic sessions of ``--users`` users, shaped as the
   embedded engine returns them, made batch by batch (copies of a pre-built pool, so making
   them costs little) and run through the real pipeline (checks, COPY into staging, inserts
   and upserts, daily activity, one commit) into an embedded PostgreSQL. Then a second run
   with no new data.

Prints rows/s per phase, CPU per session, and peak memory (RSS of this process; PostgreSQL's
own memory is not included). Run from the repository root:

    .venv/bin/python -m bench.etl_throughput            # 1,000,000 sessions, 20,000 extracted
    .venv/bin/python -m bench.etl_throughput --sessions 200000 --extract-docs 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from etl import pipeline
from etl.sources import Batch, MongoSource, Watermark
from etl.warehouse import Warehouse, stop_embedded
from fitness import mongo
from fitness.clock import as_utc
from fitness.workouts import WORKOUT_TYPES, calories_burned

BASE = dt.datetime(2025, 1, 1)
STEP = dt.timedelta(seconds=7)  # 1,000,000 sessions 7 s apart span 81 days
POOL_SIZE = 50_000
_SCATTER = 0x9E3779B97F4A7C15  # n * this mod 2**64: distinct, in no particular order


def session_id(n: int) -> str:
    """Return a UUID-shaped id that, like uuid4s, arrives in random key order."""
    value = f"{n * _SCATTER % (1 << 64):016x}"
    return f"{value[:8]}-{value[8:12]}-4{value[13:16]}-8000-{n:012x}"


def session_doc(n: int, users: int) -> dict[str, Any]:
    """Return synthetic session number ``n``, as the embedded engine returns a stored one."""
    start = BASE + n * STEP
    minutes = 10 + n % 80
    workout_type = WORKOUT_TYPES[n % len(WORKOUT_TYPES)]
    return {
        "_id": session_id(n),
        "user_id": user_id(n % users),
        "workout_type": workout_type,
        "status": "ended",
        "start_time": start,
        "end_time": start + dt.timedelta(minutes=minutes),
        "duration": float(minutes),
        "calories_burned": calories_burned(workout_type, 70.0, minutes),
        "weight_kg": 70.0,
        "weight_source": "profile",
        "progress_reported": True,
        "created_at": start,
        "updated_at": start + dt.timedelta(minutes=90),
    }


def user_id(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-00000000user"


def user_row(n: int) -> dict[str, Any]:
    """Return synthetic user number ``n``, as the user database returns one."""
    moment = BASE - dt.timedelta(days=1) + dt.timedelta(milliseconds=n)
    row = {"id": user_id(n), "username": f"bench{n}", "weight_kg": 70.0}
    return {**row, "created_at": moment, "updated_at": moment}


class PooledSessions:
    """Make session ``n`` by copying a pre-built one and moving it in time: cheap to make."""

    def __init__(self, users: int):
        self.users = users
        self.pool = [session_doc(n, users) for n in range(POOL_SIZE)]

    def __call__(self, n: int) -> dict[str, Any]:
        doc = dict(self.pool[n % POOL_SIZE])
        shift = n // POOL_SIZE * POOL_SIZE * STEP
        doc["_id"] = session_id(n)
        for name in ("start_time", "end_time", "created_at", "updated_at"):
            doc[name] += shift
        return doc


class Generated:
    """A source that makes its rows on the fly, in updated_at order, once."""

    def __init__(self, name: str, count: int, make: Callable[[int], dict[str, Any]], size: int):
        self.name = name
        self.count = count
        self.make = make
        self.batch_size = size

    def batches(self, since: Watermark, until: dt.datetime) -> Iterator[Batch]:
        first = 0 if since == Watermark() else self.count  # the second run finds nothing new
        for start in range(first, self.count, self.batch_size):
            rows = [self.make(n) for n in range(start, min(self.count, start + self.batch_size))]
            key = rows[-1].get("_id") or rows[-1]["id"]
            yield Batch(rows, Watermark(as_utc(rows[-1]["updated_at"]), key))

    def fetch(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        return []


def measure_extract(docs: int, size: int, root: Path) -> None:
    """Write ``docs`` sessions into an embedded store, then read them back as the ETL does."""
    db = mongo.connect("", str(root), "activity")
    db.timeout = 3600.0
    db["sessions"].create_index([("updated_at", 1)])
    began = time.perf_counter()
    for start in range(0, docs, 5_000):
        db["sessions"].insert_many(
            [session_doc(n, 1000) for n in range(start, min(docs, start + 5_000))]
        )
    written = time.perf_counter() - began
    began, read = time.perf_counter(), 0
    for batch in MongoSource("sessions", db, size).batches(Watermark(), dt.datetime.now(dt.UTC)):
        read += len(batch.rows)
    took = time.perf_counter() - began
    print(f"embedded MongoDB engine, {docs:,} sessions, batches of {size:,}:")
    print(f"  write (insert_many)      {docs / written:>10,.0f} rows/s  ({written:.1f} s)")
    print(f"  extract (the ETL source) {read / took:>10,.0f} rows/s  ({took:.1f} s)")


def measure_load(sessions: int, users: int, size: int, warehouse: Warehouse) -> None:
    """Run the pipeline over generated users and sessions, then again with nothing new."""
    sources = [
        Generated("users", users, user_row, size),
        Generated("sessions", sessions, PooledSessions(users), size),
    ]
    options = pipeline.RunOptions(until=dt.datetime.now(dt.UTC), progress=_progress())
    _ = warehouse.url  # start the embedded server before the clocks start
    began, cpu_before = time.perf_counter(), _cpu_seconds(warehouse)
    result = pipeline.run(warehouse, sources, options)
    wall = time.perf_counter() - began
    time.sleep(0.5)  # the server counts a backend's CPU once the backend has exited
    ours, server = (a - b for a, b in zip(_cpu_seconds(warehouse), cpu_before, strict=True))
    _print_load(result, wall, sessions, users, size, ours, server)
    again = pipeline.run(warehouse, sources, pipeline.RunOptions(until=options.until))
    print(f"  run with no new data      {again.seconds:>10.3f} s ({again.read} rows read)")


def _print_load(result, wall, sessions, users, size, ours, server) -> None:
    stats = result.sources["sessions"]
    made = sum(item.extract_seconds for item in result.sources.values())
    busy = wall - made  # the run's time, less making rows (which stands for extracting)
    transform = stats.transform_seconds
    print(f"\n{sessions:,} sessions of {users:,} users, batches of {size:,}:")
    print(f"  make rows (not measured)  {stats.read / stats.extract_seconds:>10,.0f} rows/s")
    print(f"  transform                 {stats.read / transform:>10,.0f} rows/s ({transform:.1f}s)")
    print(f"  load, beyond transform    {stats.loaded / (busy - transform):>10,.0f} rows/s")
    print(f"  transform + load          {stats.loaded / busy:>10,.0f} fact rows/s  ({busy:.1f} s)")
    print(f"  loaded {stats.loaded:,}, rejected {stats.rejected:,}; run {wall:.1f} s in all")
    cpu = f"  CPU per session: this process {ours / sessions * 1e6:.1f} µs (making rows included)"
    if server:
        cpu += f", PostgreSQL {server / sessions * 1e6:.1f} µs"
    print(cpu)


def _cpu_seconds(warehouse: Warehouse) -> tuple[float, float]:
    """Return the CPU seconds of this process and of the embedded server (0 if not embedded)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ours = usage.ru_utime + usage.ru_stime
    if not warehouse.is_embedded:
        return ours, 0.0
    pid = (warehouse.embedded_dir / "postmaster.pid").read_text().split()[0]
    # utime, stime, and the same for exited children (the backends of closed connections).
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return ours, sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _progress() -> pipeline.Progress:
    last = {"at": time.monotonic()}

    def progress(name: str, stats: pipeline.SourceStats) -> None:
        if time.monotonic() - last["at"] >= 5:
            last["at"] = time.monotonic()
            print(f"  … {name}: {stats.read:,} read", flush=True)

    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--extract-docs", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--warehouse-url", default="", help="default: embedded, temporary")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()},")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start\n")
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        root = Path(tmp)
        measure_extract(args.extract_docs, args.batch_size, root)
        warehouse = Warehouse(args.warehouse_url, root / "warehouse")
        try:
            measure_load(args.sessions, args.users, args.batch_size, warehouse)
        finally:
            warehouse.release()
            stop_embedded(root / "warehouse")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (RSS of this process): {peak_mib:,.0f} MiB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
