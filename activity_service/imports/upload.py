"""From an uploaded file to the activities in it: its name decides the reader, within limits.

Limits (documented in docs/api.md): a file of at most ``fitness.imports.MAX_FILE_BYTES`` (413
past it; only an archive may be larger, up to ``MAX_UPLOAD_BYTES``), a gzipped file unpacking to
at most ``MAX_UNPACKED_BYTES`` (read in chunks, so a zip bomb stops there), and at most
``formats.MAX_ROWS`` activities a file.
"""

from __future__ import annotations

import zlib
from pathlib import PurePosixPath

from activity_service.exceptions import UnreadableFile, UnsafeFile, UnsupportedFormat
from activity_service.imports.formats import READERS, Found
from fitness.errors import DomainError, ValidationFailed
from fitness.shedding import SheddingPool

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
ACCEPTED = ", ".join(sorted(READERS))


def read_upload(filename: str, data: bytes) -> list[Found]:
    """Return the activities and rejections in an uploaded file (gzipped or not).

    Raise ``UnsupportedFormat``, ``UnreadableFile`` or ``UnsafeFile`` for a file that can't be
    imported at all: nothing of it is stored then.
    """
    name = display_name(filename)
    stem = name.lower()
    if stem.endswith(".gz") or data.startswith(_GZIP_MAGIC):
        data = gunzip(data, name)
        stem = stem.removesuffix(".gz")
    reader = READERS.get(PurePosixPath(stem).suffix)
    if reader is None:
        raise UnsupportedFormat(name, ACCEPTED)
    return reader(data, name)


PARSING_MEMORY_BYTES = 2 * 2**30
"""Address space of the process that reads files: a 64 MiB XML document fits, more fails."""


def parsing_pool() -> SheddingPool:
    """Return the pool that reads uploads: one low-priority process, one file waiting.

    Parsing is Python work: in the request threads it would hold the GIL they need (another
    user's reads took 4x as long while 60-minute files imported on the same replica).
    """
    return SheddingPool(
        "file imports",
        workers=1,
        queue=1,
        retry_after=5,
        wait_seconds=120,
        memory_limit=PARSING_MEMORY_BYTES,
    )


def read_upload_in(pool: SheddingPool, filename: str, data: bytes) -> list[Found]:
    """``read_upload`` run on ``pool``; raise what it raised there as a ``ValidationFailed``."""
    outcome = pool.run(read_upload_or_refusal, filename, data)
    if isinstance(outcome, list):
        return outcome
    code, message, fields = outcome
    raise ValidationFailed(message, fields, code=code)


def read_upload_or_refusal(filename: str, data: bytes) -> list[Found] | tuple[str, str, dict]:
    """Return what ``read_upload`` returns, or its refusal as (code, message, fields), for a
    pool process: our exceptions take arguments of their own, so they don't survive the trip
    back as objects."""
    try:
        return read_upload(filename, data)
    except DomainError as exc:
        return exc.code, exc.message, exc.fields
    except MemoryError:
        name = display_name(filename)
        reason = "it takes more memory to read than a file may"
        return UnreadableFile.code, f"{name!r} could not be read: {reason}.", {"file": reason}


def display_name(filename: str) -> str:
    """Return the file's own name without any directory a client put in front, for messages."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    return "".join(ch for ch in name if ch.isprintable())[:128] or "upload"


def gunzip(data: bytes, name: str, limit: int = MAX_UNPACKED_BYTES) -> bytes:
    """Unpack gzip ``data`` to at most ``limit`` bytes, refusing more (a zip bomb) or a cut file."""
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        unpacked = unpacker.decompress(data, limit + 1)
    except zlib.error as exc:
        raise UnreadableFile(name, f"it is not valid gzip ({exc})") from None
    if len(unpacked) > limit:
        raise UnsafeFile(name, f"it unpacks to more than {limit // 2**20} MiB")
    if not unpacker.eof:
        raise UnreadableFile(name, "the gzip stream is cut short")
    return unpacked
