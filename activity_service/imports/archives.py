"""Zip archives of activity files (a Strava bulk export, or any zip of GPX/TCX/FIT/CSV files).

Nothing is ever extracted to disk: members are read into memory one at a time, each to at most
``MAX_MEMBER_BYTES`` however large its header says it is, so neither a zip bomb nor a name such
as ``../../etc/cron.d/x`` can do harm; names are only shown. Before a job starts, the central
directory is checked: how many members, how much they claim to unpack to, how compressed they
are, and whether any is encrypted.

A Strava export lists its activities in ``activities.csv`` with their type ("Run", "Ride",
"Weight Training"): that type is used when an activity's own file names no sport we map. A row
without a file is an activity entered by hand; the row becomes the workout.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from activity_service.exceptions import UnreadableFile, UnsafeFile
from activity_service.imports.formats import (
    MAX_ROWS,
    READERS,
    Activity,
    Found,
    Rejection,
    csv_layout,
    positive,
)

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


def is_archive(filename: str, head: bytes) -> bool:
    """Tell from its name or its first bytes whether an upload is a zip archive."""
    return filename.lower().endswith(".zip") or head.startswith(ZIP_MAGIC)


def open_archive(source: IO[bytes], name: str) -> zipfile.ZipFile:
    """Return the zip archive in the seekable file ``source``; raise ``UnreadableFile`` if it
    is none. Members are read from the file as they are needed, never all at once."""
    try:
        return zipfile.ZipFile(source)
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


@dataclass(frozen=True)
class StravaIndex:
    """What a Strava export's ``activities.csv`` says: each file's activity type, and the
    activities entered by hand, which have a row but no file."""

    types: dict[str, str] = dataclasses.field(default_factory=dict)
    manual: list[Found] = dataclasses.field(default_factory=list)


STRAVA_DATE = "%b %d, %Y, %I:%M:%S %p"
"""How ``activities.csv`` writes a start: "Mar 3, 2019, 5:52:31 PM" (UTC)."""


def strava_index(archive: zipfile.ZipFile) -> StravaIndex:
    """Read a Strava export's ``activities.csv``, if the archive has one."""
    index = next(
        (
            info
            for info in archive.infolist()
            if PurePosixPath(shown_name(info.filename)).name.lower() == STRAVA_INDEX
        ),
        None,
    )
    if index is None or index.file_size > MAX_MEMBER_BYTES:
        return StravaIndex()
    try:
        text = archive.read(index).decode("utf-8-sig", errors="replace")
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError):
        return StravaIndex()
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, [])
    found = StravaIndex()
    for number, row in enumerate(rows, start=2):
        cells = _StravaRow(header, row)
        filename, kind = cells.first("Filename"), cells.first("Activity Type")
        if filename and kind:
            found.types[shown_name(filename)] = kind
        elif not filename and len(found.manual) < MAX_ROWS and any(row):
            found.manual.append(_manual_activity(cells, f"{STRAVA_INDEX} row {number}"))
    return found


class _StravaRow:
    """One row of ``activities.csv`` by column name. Some names come twice: "Distance" first in
    the athlete's units (km or miles), then in metres; "Elapsed Time" in seconds both times."""

    def __init__(self, header: list[str], row: list[str]):
        self.cells: dict[str, list[str]] = {}
        for name, cell in zip(header, row, strict=False):
            self.cells.setdefault(name.strip().lower(), []).append(cell.strip())

    def first(self, name: str) -> str:
        return next(iter(self.cells.get(name.lower(), [])), "")

    def metres(self) -> float | None:
        """Return the distance in metres: only the second "Distance" is known to be in them."""
        both = self.cells.get("distance", [])
        return positive(both[1].replace(",", "")) if len(both) > 1 and both[1] else None


def _manual_activity(cells: _StravaRow, where: str) -> Found:
    """Return an activity entered by hand on Strava (no file: the row is all there is)."""
    try:
        start = dt.datetime.strptime(cells.first("Activity Date"), STRAVA_DATE)
    except ValueError:
        return Rejection(where, f"Activity Date {cells.first('Activity Date')!r} is not a date")
    seconds = positive(cells.first("Elapsed Time").replace(",", ""))
    if seconds is None:
        return Rejection(where, "Elapsed Time is not a positive number of seconds")
    start = start.replace(tzinfo=dt.UTC)
    metres = cells.metres()
    return Activity(
        where=where,
        sports=(cells.first("Activity Type"),),
        start_time=start,
        end_time=start + dt.timedelta(seconds=seconds),
        distance_km=None if metres is None else metres / 1000,
        elevation_gain_m=positive(cells.first("Elevation Gain")),
        average_heart_rate=positive(cells.first("Average Heart Rate")),
        calories_burned=positive(cells.first("Calories")),
    )


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
