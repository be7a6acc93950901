"""File uploads on their way through: spooled once, hashed, sent again from the start if need be.

The gateway reads any other body into memory (64 KiB at most). An upload may be an archive of
up to ``MAX_UPLOAD_BYTES``: it is copied to a temporary file (in memory up to ``SPOOL_BYTES``)
as it arrives, hashed on the way for the idempotency record, and sent to a replica from that
file, so a reroute to another replica can send it again without the client sending it twice.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO

from flask import g, request

from fitness.imports import IMPORT_PATH, SPOOL_BYTES

READ_BYTES = 2**20
STORE_SECONDS_PER_MIB = 0.1
"""Time a replica may take to store each MiB of an upload before it answers (an archive is
stored whole before its job is queued), on top of the usual read timeout."""


@dataclass(frozen=True)
class SpooledBody:
    """A request body in a (temporary) file: its length and SHA-256 known."""

    file: IO[bytes]
    length: int
    sha256: bytes

    def rewound(self) -> IO[bytes]:
        """Return the file, at its start (each attempt sends the whole body)."""
        self.file.seek(0)
        return self.file

    @property
    def extra_seconds(self) -> float:
        return self.length / 2**20 * STORE_SECONDS_PER_MIB


def is_upload() -> bool:
    """Tell whether this request carries a file to import."""
    return request.method == "POST" and IMPORT_PATH.fullmatch(request.path) is not None


def spooled_body() -> SpooledBody:
    """Return this request's body, spooled (read from the client once per request)."""
    if "spooled_body" not in g:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (per request)
        digest = hashlib.sha256()
        while chunk := request.stream.read(READ_BYTES):
            spool.write(chunk)
            digest.update(chunk)
        g.spooled_body = SpooledBody(spool, spool.tell(), digest.digest())
    return g.spooled_body
