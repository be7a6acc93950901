"""Archives import as jobs: answered 202 at once, read in the background, resumed after a crash.

``submit`` checks the archive's central directory, stores the archive in the document store in
chunks (so every replica can read it) and then the job; the job's id derives from the user and
the archive's hash, so sending the same archive again finds the same job. The archive is never
whole in memory: it arrives as a temporary file, goes to the store a chunk at a time, and comes
back to the replica running the job into a temporary file of its own.

Every activity-service process runs ``run``: it claims a queued job, or one whose lease ran
out, with one conditional update (the lease: ``LEASE``), then reads the archive ``BATCH``
members at a time, on a pool of low-priority processes (one per core by default: parsing is
Python work). The next batch is read while one is stored, and between two stores the job
rests (``REST_SECONDS``).
After each batch it records how far it got and renews the lease in one
update that only applies while it still holds the lease. A process killed mid-job stops
renewing; after the lease another one claims the job and goes on from the last recorded
batch. Reading a batch again imports nothing twice: workouts are stored under ids derived from
user, type and start (``ImportService.store_found``), so the repeat counts as duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import Executor, Future
from typing import IO, TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from activity_service.exceptions import ImportNotFound, NothingImported
from activity_service.imports import archives
from activity_service.imports.formats import MAX_LISTED, Found, Rejection
from activity_service.imports.upload import (
    PARSING_MEMORY_BYTES,
    display_name,
    read_upload_or_refusal,
)
from activity_service.store import ActivityStore
from fitness import mongo
from fitness.clock import as_utc, utcnow
from fitness.errors import PermissionDenied
from fitness.shedding import BACKGROUND_NICENESS, low_priority_processes, lower_priority

if TYPE_CHECKING:
    from activity_service.imports.service import ImportService, Outcome

log = logging.getLogger(__name__)

LEASE = dt.timedelta(seconds=30)
BATCH = 20  # members read between two progress records
REST_SECONDS = 0.2
"""How long a job waits between storing one batch and storing the next (the wait for the next
batch's reading counts). Storing a batch is a burst of normal-priority work in the store and
both services that no process priority can separate from other users' requests; the rests
leave those requests room. The figures, and what it costs: docs/benchmarks.md, Imports."""
MAX_REST_SECONDS = LEASE.total_seconds() / 3  # the lease is renewed once a batch
POLL_SECONDS = 1.0
MAX_ATTEMPTS = 5  # claims of one job before it is given up as failed
CHUNK_BYTES = 4 * 2**20  # the archive is stored in documents this large
_JOBS = uuid.UUID("a7c3e9d1-5b2f-4e8a-9c6d-3f1b0e2a7d54")


class ImportJobs:
    """Archive imports as background jobs any replica can run."""

    def __init__(
        self,
        store: ActivityStore,
        imports: ImportService,
        processes: int = 0,
        rest_seconds: float = REST_SECONDS,
    ):
        if not 0 <= rest_seconds <= MAX_REST_SECONDS:
            raise ValueError(f"the rest between stores must be 0 to {MAX_REST_SECONDS:g} s")
        self.store = store
        self.imports = imports
        self.rest_seconds = rest_seconds
        # Processes reading files while a job runs: by default one per core. They run at the
        # lowest priority in a scheduling group of their own (``fitness.shedding``), so they
        # take only what requests leave: on 2 cores, two of them read a third faster than one,
        # with other users' reads no slower (docs/benchmarks.md).
        self.processes = processes or len(os.sched_getaffinity(0))
        self._token = uuid.uuid4().hex[:8]

    @property
    def me(self) -> str:
        """Who holds a lease: this process (read at each use: a worker forked after the
        service was built has a pid of its own)."""
        return f"{socket.gethostname()}:{os.getpid()}:{self._token}"

    # --- the API -------------------------------------------------------------------------------

    def submit(self, user_id: str, filename: str, upload: IO[bytes]) -> tuple[dict[str, Any], int]:
        """Queue the import of the archive in the seekable file ``upload``; return the job's
        view and 202 (200: sent before)."""
        name = display_name(filename)
        with archives.open_archive(upload, name) as archive:
            members = archives.activity_members(archive, name)
            manual = archives.strava_index(archive).manual
        if not members and not manual:
            raise NothingImported({name: "it holds no GPX, TCX, FIT or CSV file"})
        upload.seek(0)
        digest = hashlib.file_digest(upload, "sha256").hexdigest()  # type: ignore[arg-type]
        job_id = str(uuid.uuid5(_JOBS, f"{user_id}\n{digest}"))
        if (earlier := self.store.import_jobs.find_one({"_id": job_id})) is not None:
            return job_view(earlier), 200
        size = self._store_archive(job_id, upload)
        now = utcnow()
        job = {
            "_id": job_id,
            "user_id": user_id,
            "file": name,
            "state": "queued",
            "bytes": size,
            "total": len(members),
            "done": 0,
            "imported": 0,
            "duplicates": 0,
            "rejected": 0,
            "rejections": [],
            "attempts": 0,
            "lease_owner": None,
            "lease_until": now,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        try:
            self.store.import_jobs.insert_one(job)
        except DuplicateKeyError:  # the same archive sent twice at once
            return job_view(self.store.import_jobs.find_one({"_id": job_id}) or job), 200
        log.info("import job queued", extra={"user.id": user_id, "import.id": job_id})
        return job_view(job), 202

    def get(self, job_id: str, caller_id: str) -> dict[str, Any]:
        """Return one of the caller's import jobs."""
        job = self.store.import_jobs.find_one({"_id": job_id}) if len(job_id) <= 64 else None
        if job is None:
            raise ImportNotFound(job_id)
        if job["user_id"] != caller_id:
            raise PermissionDenied("This import belongs to another user.")
        return job_view(job)

    def _store_archive(self, job_id: str, upload: IO[bytes]) -> int:
        """Store the archive a chunk at a time (one taken already: an earlier attempt, the same
        bytes); return its size."""
        upload.seek(0)
        size = 0
        for n, piece in enumerate(iter(lambda: upload.read(CHUNK_BYTES), b"")):
            chunk = {"_id": f"{job_id}:{n:05d}", "job_id": job_id, "n": n, "data": piece}
            mongo.insert_new(self.store.import_chunks, [chunk])
            size += len(piece)
        return size

    # --- the background runner -----------------------------------------------------------------

    def run(self, stopped: threading.Event) -> None:
        """Run claimable jobs until ``stopped`` is set (a background loop of each worker).

        At low CPU priority, like the file reading it hands over: requests come first.
        """
        lower_priority()
        while not stopped.wait(POLL_SECONDS):
            try:
                while not stopped.is_set() and self.run_once():
                    pass
            except Exception:  # keep the loop alive through store outages; they are logged
                log.exception("import job pass failed")

    def run_once(self) -> bool:
        """Claim one job and run it to its end (or until its lease is lost); False if none."""
        job = self._claim()
        if job is None:
            return False
        if job["attempts"] > MAX_ATTEMPTS:
            self._finish(job, "failed")
            return True
        try:
            self._process(job)
        except Exception:
            log.exception("import job %s failed; another attempt follows", job["_id"])
        return True

    def _claim(self) -> dict[str, Any] | None:
        """Take the oldest job of a state whose lease ran out: an abandoned one first.

        One question per state, each an equality: FerretDB pushes that down, where a
        ``state: {$in: [...]}`` read every job ever imported, every second, on every replica.
        """
        now = utcnow()
        lease = {"state": "running", "lease_owner": self.me, "lease_until": now + LEASE}
        for state in ("running", "queued"):
            job = mongo.update(
                self.store.import_jobs.find_one_and_update,
                {"state": state, "lease_until": {"$lte": now}},
                {"$set": lease, "$inc": {"attempts": 1}},
                sort=[("created_at", 1)],
                return_document=ReturnDocument.AFTER,
            )
            if job is not None:
                return job
        return None

    def _process(self, job: dict[str, Any]) -> None:
        with tempfile.TemporaryFile() as spool:
            self._fetch_archive(job, spool)
            with (
                archives.open_archive(spool, job["file"]) as archive,
                low_priority_processes(
                    self.processes, PARSING_MEMORY_BYTES, BACKGROUND_NICENESS
                ) as readers,
            ):
                if not self._import_members(job, archive, readers):
                    return
        self._finish(job, "done")

    def _fetch_archive(self, job: dict[str, Any], spool: IO[bytes]) -> None:
        """Copy the stored archive into ``spool``, a chunk at a time."""
        size = 0
        chunks = self.store.import_chunks.find({"job_id": job["_id"]}, sort=[("n", 1)])
        for chunk in chunks.batch_size(1):
            spool.write(chunk["data"])
            size += len(chunk["data"])
        if size != job.get("bytes", size):
            raise RuntimeError(f"the archive has {size} of its {job['bytes']} bytes in the store")
        spool.seek(0)

    def _import_members(
        self, job: dict[str, Any], archive: zipfile.ZipFile, readers: Executor
    ) -> bool:
        """Import the members not done yet, a batch at a time; False if the lease was lost."""
        members = archives.activity_members(archive, job["file"])
        index = archives.strava_index(archive)
        rejections = list(job["rejections"])
        if job["done"] == 0 and index.manual:  # activities entered by hand: no file, a row
            outcome = self.imports.store_found(job["user_id"], index.manual, None)
            rejections = (rejections + outcome.rejected)[:MAX_LISTED]
            if not self._advance(job, 0, _counts(outcome), rejections):
                return False
        batches = [members[i : i + BATCH] for i in range(job["done"], len(members), BATCH)]
        reading = self._start_reading(archive, batches[0], readers) if batches else []
        rested = 0.0  # when the rest after the last store is over (time.monotonic)
        for number in range(len(batches)):
            current = reading
            if number + 1 < len(batches):  # read the next batch while this one is stored
                reading = self._start_reading(archive, batches[number + 1], readers)
            found = _found(current, index.types)
            time.sleep(max(0.0, rested - time.monotonic()))
            outcome = self.imports.store_found(job["user_id"], found, None)
            rested = time.monotonic() + self.rest_seconds
            rejections = (rejections + outcome.rejected)[:MAX_LISTED]
            done = min(job["done"] + (number + 1) * BATCH, len(members))
            if not self._advance(job, done, _counts(outcome), rejections):
                log.warning("import job %s: lease lost at %d", job["_id"], done)
                return False
        return True

    @staticmethod
    def _start_reading(
        archive: zipfile.ZipFile, batch: list[archives.Member], readers: Executor
    ) -> list[tuple[archives.Member, Rejection | Future]]:
        """Unpack the batch's members and hand each to a reading process."""
        started: list[tuple[archives.Member, Rejection | Future]] = []
        for member in batch:
            raw = archives.read_member(archive, member)
            reading = (
                raw
                if isinstance(raw, Rejection)
                else readers.submit(read_upload_or_refusal, member.name, raw)
            )
            started.append((member, reading))
        return started

    def _advance(
        self, job: dict[str, Any], done: int, counts: dict[str, int], rejections: list[Rejection]
    ) -> bool:
        """Record progress and renew the lease, while this process still holds it."""
        now = utcnow()
        result = mongo.update(
            self.store.import_jobs.update_one,
            {"_id": job["_id"], "lease_owner": self.me},
            {
                "$set": {
                    "done": done,
                    "rejections": [{"where": r.where, "reason": r.reason} for r in rejections],
                    "lease_until": now + LEASE,
                    "updated_at": now,
                },
                "$inc": counts,
            },
        )
        return bool(result.matched_count)

    def _finish(self, job: dict[str, Any], state: str) -> None:
        now = utcnow()
        result = mongo.update(
            self.store.import_jobs.update_one,
            {"_id": job["_id"], "lease_owner": self.me},
            {"$set": {"state": state, "lease_owner": None, "updated_at": now, "finished_at": now}},
        )
        if result.matched_count:
            self.store.import_chunks.delete_many({"job_id": job["_id"]})
            log.info(
                "import job %s", state, extra={"user.id": job["user_id"], "import.id": job["_id"]}
            )


def _counts(outcome: Outcome) -> dict[str, int]:
    return {
        "imported": len(outcome.imported),
        "duplicates": len(outcome.duplicates),
        "rejected": len(outcome.rejected),
    }


def _found(
    reading: list[tuple[archives.Member, Rejection | Future]], hints: dict[str, str]
) -> list[Found]:
    """Return what a batch's members held once read, each refusal as a rejection."""
    found: list[Found] = []
    for member, outcome in reading:
        result = outcome if isinstance(outcome, Rejection) else outcome.result()
        if isinstance(result, Rejection):
            found.append(result)
        elif isinstance(result, list):
            found += archives.with_hint(result, hints.get(member.name))
        else:
            _code, message, fields = result
            found.append(Rejection(member.name, fields.get("file") or message))
    return found


def job_view(job: dict[str, Any]) -> dict[str, Any]:
    """Return an import job in the API's shape."""
    rejections = job.get("rejections", [])
    return {
        "import_id": job["_id"],
        "state": job["state"],
        "file": job["file"],
        "progress": {"done": job["done"], "total": job["total"]},
        "imported": job["imported"],
        "duplicates": job["duplicates"],
        "rejected": job["rejected"],
        "rejections": rejections,
        "status_url": f"/imports/{job['_id']}",
        "created_at": _iso(job["created_at"]),
        "updated_at": _iso(job["updated_at"]),
        "finished_at": _iso(job.get("finished_at")),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()
