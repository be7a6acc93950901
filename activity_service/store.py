"""Where workout sessions live: collections on a MongoDB-protocol server, and their indexes."""

from __future__ import annotations

from typing import Any

import pymongo

from fitness import mongo

DATABASE_NAME = mongo.ACTIVITY_DATABASE


class ActivityStore:
    """The activity database's collections, created lazily so the factory does no I/O."""

    def __init__(self, url: str):
        self._url = url
        self._db: Any = None
        self._indexed = False

    @property
    def db(self) -> Any:
        if self._db is None:
            self._db = mongo.connect(self._url, DATABASE_NAME)
        return self._db

    @property
    def sessions(self) -> Any:
        """Workout sessions, one document each, keyed by session id."""
        return self.db["sessions"]

    @property
    def active_sessions(self) -> Any:
        """One document per user with an active session: a unique _id makes start atomic."""
        return self.db["active_sessions"]

    @property
    def user_totals(self) -> Any:
        """Each user's totals of ended sessions, keyed by user id (see ``totals.py``)."""
        return self.db["user_totals"]

    @property
    def goals(self) -> Any:
        """The service's copy of users' goals, set by saga steps (see ``goals.py``)."""
        return self.db["goals"]

    @property
    def group_sessions(self) -> Any:
        """Finished live group sessions, one document each (participants, timeline, votes)."""
        return self.db["group_sessions"]

    @property
    def exports(self) -> Any:
        """When each user last exported, keyed by user id (``exports``: one an hour)."""
        return self.db["exports"]

    @property
    def import_jobs(self) -> Any:
        """Archive imports running in the background, keyed by job id (``imports.jobs``)."""
        return self.db["import_jobs"]

    @property
    def import_chunks(self) -> Any:
        """The archives of import jobs, in pieces of a few MiB, until their job ends."""
        return self.db["import_chunks"]

    @property
    def imported_activities(self) -> Any:
        """Fingerprints of imported activities, keyed ``user:fingerprint`` (``imports``)."""
        return self.db["imported_activities"]

    def create_indexes(self) -> None:
        """Create the indexes queries rely on (idempotent; run at start-up)."""
        self.sessions.create_index([("user_id", pymongo.ASCENDING), ("start_time", -1)])
        # The outbox's query; its rare field first (the local store indexes that field alone).
        self.sessions.create_index([("progress_reported", 1), ("status", 1)])
        self.sessions.create_index([("updated_at", pymongo.ASCENDING)])
        self.goals.create_index([("user_id", pymongo.ASCENDING), ("status", 1)])
        self.import_jobs.create_index([("state", 1), ("lease_until", 1)])
        self.import_chunks.create_index([("job_id", 1), ("n", 1)])

    def ping(self) -> None:
        """Raise unless the store answers."""
        mongo.ping(self.db)

    def check_ready(self) -> None:
        """Raise unless the store answers; create the indexes the first time it does.

        Not a start-up step: a replica that starts while the store is down (a whole-stack
        restart) must wait, not-ready, instead of failing to boot.
        """
        self.ping()
        if not self._indexed:
            self.create_indexes()
            self._indexed = True
