"""The user database: one engine and session factories per process, SQLite or PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from fitness.sqldb import make_engine


class Database:
    """Session factories over one engine: ``reading()`` and ``writing()`` transactions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        write_engine = self.engine
        if url.startswith("sqlite"):
            write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._write = sessionmaker(write_engine, expire_on_commit=False)

    def reading(self) -> Session:
        """Return a session for reads (use as ``with db.reading() as s``)."""
        return self._read()

    def writing(self):
        """Return a transaction that commits on success (``with db.writing() as s``)."""
        return self._write.begin()

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
