"""Zip archives of activity files (a Strava bulk export, or any zip of GPX/TCX/FIT/CSV files).

Nothing is ever extracted to disk: members are read into memory one at a time, each to at most
``MAX_MEMBER_BYTES`` however large its header says it is, so neither a zip bomb nor a name such
as ``../../etc/cron.d/x`` can do harm; names are only shown. Before a job starts, the central
directory is checked: how many members, how much they claim to unpack to, how compressed they
are, and whether any is encrypted.

A Strava export lists its activities in ``activities.csv`` with their type ("Run", "Ride",
"Weight Training"): that type is used when an activity's own file names no sport we map.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from activity_service.exceptions import UnreadableFile, UnsafeFile
from activity_service.imports.formats import READERS, Activity, Found, Rejection, csv_layout

MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 64 * 2**20
MAX_UNPACKED_BYTES = 4 * 2**30
MAX_RATIO = 200
"""Unpacked size over packed size: GPX compresses ~10x, a bomb ~1000x."""
ZIP_MAGIC = b"PK\x03\x04"
STRAVA_INDEX = "activities.csv"


@dataclass(frozen=True)
class Member:
    """One activity file in an archive: its index there, and its name as shown."""

    index: int
    name: str


def is_archive(filename: str, data: bytes) -> bool:
    return filename.lower().endswith(".zip") or data.startswith(ZIP_MAGIC)


def open_archive(data: bytes, name: str) -> zipfile.ZipFile:
    """Return the zip archive in ``data``; raise ``UnreadableFile`` if it is none."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableFile(name, f"it is not a readable zip archive ({exc})") from None


def activity_members(archive: zipfile.ZipFile, archive_name: str) -> list[Member]:
    """Return the archive's activity files in order; raise if the archive itself is unsafe.

    Other members (photos, Strava's other CSVs) are not activities and are left out.
    """
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UnsafeFile(archive_name, f"it holds more than {MAX_MEMBERS} files")
    if sum(info.file_size for info in infos) > MAX_UNPACKED_BYTES:
        raise UnsafeFile(archive_name, f"it unpacks to more than {MAX_UNPACKED_BYTES // 2**30} GiB")
    members = []
    for index, info in enumerate(infos):
        name = shown_name(info.filename)
        if info.is_dir() or PurePosixPath(name).name.lower() == STRAVA_INDEX:
            continue
        if _suffix(name) == ".csv" and not _is_ours(archive, info):
            continue  # Strava's other tables (profile, routes, comments): not activities
        if _suffix(name) in READERS:
            members.append(Member(index, name))
    return members


def _is_ours(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Tell whether a CSV member's header is one of the documented layouts (a gzipped or an
    unreadable one counts: it is read in full later, and listed as rejected if bad)."""
    if info.filename.lower().endswith(".gz"):
        return True
    try:
        with archive.open(info) as member_file:
            first = member_file.read(4096).decode("utf-8-sig", errors="replace")
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError):
        return True
    header = next(csv.reader(io.StringIO(first.partition("\n")[0])), [])
    return csv_layout(header) is not None


def read_member(archive: zipfile.ZipFile, member: Member) -> bytes | Rejection:
    """Return the member's bytes, read to at most ``MAX_MEMBER_BYTES``, or why it can't be."""
    info = archive.infolist()[member.index]
    if info.flag_bits & 0x1:
        return Rejection(member.name, "it is encrypted")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        return Rejection(member.name, f"it unpacks over {MAX_RATIO} times its packed size")
    try:
        with archive.open(info) as member_file:
            raw = member_file.read(MAX_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
        return Rejection(member.name, f"it could not be unpacked ({exc})")
    if len(raw) > MAX_MEMBER_BYTES:
        return Rejection(member.name, f"it unpacks to more than {MAX_MEMBER_BYTES // 2**20} MiB")
    return raw


def strava_types(archive: zipfile.ZipFile) -> dict[str, str]:
    """Return {member name: Strava activity type} from a Strava export's ``activities.csv``."""
    index = next(
        (
            info
            for info in archive.infolist()
            if PurePosixPath(shown_name(info.filename)).name.lower() == STRAVA_INDEX
        ),
        None,
    )
    if index is None or index.file_size > MAX_MEMBER_BYTES:
        return {}
    try:
        text = archive.read(index).decode("utf-8-sig", errors="replace")
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError):
        return {}
    types = {}
    for row in csv.DictReader(io.StringIO(text, newline="")):
        filename, kind = row.get("Filename") or "", row.get("Activity Type") or ""
        if filename and kind:
            types[shown_name(filename)] = kind
    return types


def with_hint(found: list[Found], hint: str | None) -> list[Found]:
    """Add a sport hint after the file's own names (used only when those map to nothing)."""
    if not hint:
        return found
    return [
        dataclasses.replace(item, sports=(*item.sports, hint))
        if isinstance(item, Activity)
        else item
        for item in found
    ]


def shown_name(filename: str) -> str:
    """Return a member's name as shown: forward slashes, no root, no ``.`` or ``..`` parts."""
    parts = [p for p in filename.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    name = "/".join(parts)
    return "".join(ch for ch in name if ch.isprintable())[:200] or "unnamed"


def _suffix(name: str) -> str:
    lowered = name.lower().removesuffix(".gz")
    return PurePosixPath(lowered).suffix
