"""One reader per file format, each on a well-kept parser: gpxpy, tcxreader, fitdecode, csv.

A reader takes the file's bytes and returns what it found, an ``Activity`` or a ``Rejection``
(with where and why) per activity or row, so one bad row does not cost the rest. A file that
can't be read at all raises ``UnreadableFile``. XML is checked by ``safe_xml`` before any parser
sees it: these formats never need a DTD, so one is refused, and with it every entity trick.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree
import fitdecode
import gpxpy
from defusedxml import DefusedXmlException
from tcxreader.tcxreader import TCXReader

from activity_service.exceptions import UnreadableFile, UnsafeFile
from fitness.clock import as_utc
from fitness.workouts import MAX_WORKOUT_MINUTES

MAX_ROWS = 1000
"""Rows (or activities) one file may hold."""
STRENGTH_MINUTES_PER_SET = 3.0
"""A strength log has no times: each set counts as 3 minutes (about 45 s of work, 2 min rest)."""
CSV_DEFAULT_START = dt.time(12, 0)
"""A CSV row with a date and no start time starts at noon UTC, so its date stays its date."""


@dataclass(frozen=True)
class Activity:
    """One activity as a file tells it, before it becomes a workout."""

    where: str  # the file, or its row: what a person looks at to fix it
    sports: tuple[str, ...]  # the file's names for its sport, most specific first
    start_time: dt.datetime
    end_time: dt.datetime
    distance_km: float | None = None
    elevation_gain_m: float | None = None
    average_heart_rate: float | None = None
    calories_burned: float | None = None
    sets: tuple[dict[str, Any], ...] = ()

    @property
    def fingerprint(self) -> str:
        """Return a hash of what the file says of this activity, to know it when it comes again.

        Not its sport: the same activity imported again after the mapping changed is the same.
        """
        distance = None if self.distance_km is None else round(self.distance_km, 2)
        facts = (self.start_time.isoformat(), self.end_time.isoformat(), distance, self.sets)
        return hashlib.sha256(repr(facts).encode()).hexdigest()


@dataclass(frozen=True)
class Rejection:
    """Something in a file that could not be imported, and why, for the person to fix."""

    where: str
    reason: str


Found = Activity | Rejection
MAX_LISTED = 100
"""Rejections listed in one answer (with the total count): enough to fix a file, not a flood."""


def rejection_views(rejected: list[Rejection]) -> list[dict[str, str]]:
    """Return the first ``MAX_LISTED`` rejections in the API's shape."""
    return [{"where": r.where, "reason": r.reason} for r in rejected[:MAX_LISTED]]


Reader = Callable[[bytes, str], list[Found]]


def safe_xml(data: bytes, name: str) -> None:
    """Refuse XML that declares a DTD: these formats never need one, and with it go entity
    expansion and external entities.

    A DTD can only come before the root element, so the check (defusedxml's, ``forbid_dtd``)
    stops there: it reads the prolog, not the document. Whether the rest is well-formed is
    for the parser that reads it next (its error is the file's ``unreadable_file``).
    """
    parser = defusedxml.ElementTree.DefusedXMLParser(target=_Prolog(), forbid_dtd=True)
    try:
        parser.feed(data)
        parser.close()
    except _RootReached:
        return
    except DefusedXmlException as exc:
        raise UnsafeFile(name, f"it declares a DTD or entities ({type(exc).__name__})") from None
    except defusedxml.ElementTree.ParseError as exc:
        raise UnreadableFile(name, f"it is not well-formed XML ({exc})") from None


class _RootReached(Exception):
    """The root element began: no DTD came before it."""


class _Prolog:
    """A parser target that stops at the root element."""

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        raise _RootReached


def positive(value: Any, scale: float = 1.0) -> float | None:
    """Return ``value`` times ``scale`` if it is a positive finite number, else None."""
    try:
        number = float(value) * scale
    except (TypeError, ValueError):
        return None
    return number if 0 < number < float("inf") else None


def read_gpx(data: bytes, name: str) -> list[Found]:
    """Return one activity per GPX track that has timed points."""
    safe_xml(data, name)
    try:
        gpx = gpxpy.parse(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, gpxpy.gpx.GPXException) as exc:
        raise UnreadableFile(name, f"gpxpy could not read it ({exc})") from None
    found: list[Found] = []
    for number, track in enumerate(gpx.tracks[:MAX_ROWS], start=1):
        where = name if len(gpx.tracks) == 1 else f"{name} track {number}"
        bounds = track.get_time_bounds()
        if bounds.start_time is None or bounds.end_time is None:
            found.append(Rejection(where, "its points have no times"))
            continue
        heart_rates = [hr for point in _points(track) if (hr := _gpx_heart_rate(point))]
        found.append(
            Activity(
                where=where,
                sports=(track.type or "",),
                start_time=as_utc(bounds.start_time),
                end_time=as_utc(bounds.end_time),
                distance_km=positive(track.length_2d(), 1e-3),
                elevation_gain_m=positive(track.get_uphill_downhill().uphill),
                average_heart_rate=round(statistics.fmean(heart_rates)) if heart_rates else None,
            )
        )
    if not gpx.tracks:
        found.append(Rejection(name, "it has no track"))
    return found


def _points(track: gpxpy.gpx.GPXTrack) -> Iterator[gpxpy.gpx.GPXTrackPoint]:
    for segment in track.segments:
        yield from segment.points


def _gpx_heart_rate(point: gpxpy.gpx.GPXTrackPoint) -> float | None:
    """Return the heart rate of Garmin's TrackPointExtension (``gpxtpx:hr``), if any."""
    for extension in point.extensions:
        for element in extension.iter():
            if element.tag.rpartition("}")[2] == "hr":
                return positive(element.text)
    return None


def read_tcx(data: bytes, name: str) -> list[Found]:
    """Return the TCX file's activity (tcxreader reads a file as one exercise)."""
    safe_xml(data, name)
    try:
        exercise = TCXReader().read(io.BytesIO(data), only_gps=False)
    except Exception as exc:  # whatever tcxreader trips on (KeyError, ValueError, …)
        raise UnreadableFile(name, f"tcxreader could not read it ({exc!r})") from None
    if exercise.start_time is None or exercise.end_time is None:
        return [Rejection(name, "it has no timed track points")]
    return [
        Activity(
            where=name,
            sports=(exercise.activity_type or "",),
            start_time=as_utc(exercise.start_time),
            end_time=as_utc(exercise.end_time),
            distance_km=positive(exercise.distance, 1e-3),
            elevation_gain_m=positive(exercise.ascent),
            average_heart_rate=positive(exercise.hr_avg),
            calories_burned=positive(exercise.calories),
        )
    ]


def read_fit(data: bytes, name: str) -> list[Found]:
    """Return one activity per FIT session message (a multisport file has several)."""
    sessions: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    try:
        with fitdecode.FitReader(
            io.BytesIO(data),
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as fit:
            for frame in fit:
                if frame.frame_type != fitdecode.FIT_FRAME_DATA:
                    continue
                if frame.name == "session":
                    sessions.append({f.name: f.value for f in frame.fields})
                elif frame.name == "set":
                    sets.append({f.name: f.value for f in frame.fields})
    except fitdecode.FitError as exc:
        raise UnreadableFile(name, f"it is not a complete FIT file ({exc})") from None
    if not sessions:
        return [Rejection(name, "it has no session message")]
    strength = tuple(_fit_sets(sets))
    found: list[Found] = []
    for number, session in enumerate(sessions[:MAX_ROWS], start=1):
        where = name if len(sessions) == 1 else f"{name} session {number}"
        start, elapsed = session.get("start_time"), positive(session.get("total_elapsed_time"))
        if not isinstance(start, dt.datetime) or elapsed is None:
            found.append(Rejection(where, "its session has no start time or elapsed time"))
            continue
        found.append(
            Activity(
                where=where,
                sports=(str(session.get("sub_sport") or ""), str(session.get("sport") or "")),
                start_time=as_utc(start),
                end_time=as_utc(start) + dt.timedelta(seconds=elapsed),
                distance_km=positive(session.get("total_distance"), 1e-3),
                elevation_gain_m=positive(session.get("total_ascent")),
                average_heart_rate=positive(session.get("avg_heart_rate")),
                calories_burned=positive(session.get("total_calories")),
                sets=strength if len(sessions) == 1 else (),
            )
        )
    return found


def _fit_sets(sets: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Return the active sets of a FIT strength workout, in our set shape."""
    for one in sets:
        reps = one.get("repetitions")
        if one.get("set_type") == "rest" or not isinstance(reps, int) or not 1 <= reps <= 1000:
            continue
        category = one.get("category")
        if isinstance(category, tuple | list):
            category = next((c for c in category if c), None)
        weight = positive(one.get("weight"))
        yield {
            "exercise": str(category or "set").replace("_", " ")[:64],
            "reps": reps,
            **({"weight_kg": round(weight, 2)} if weight and weight <= 1000 else {}),
        }


# --- CSV: the documented columns, and the strength-log layout ------------------------------

WORKOUT_COLUMNS = ("date", "start_time", "duration", "type", "distance", "calories")
"""A workout per row: duration in minutes, distance in km; start_time (HH:MM, UTC), distance
and calories may be empty."""
STRENGTH_COLUMNS = (
    "date",
    "workout_type",
    "exercise",
    "muscle_group",
    "set_number",
    "reps",
    "weight",
)
"""A set per row (weight in kg, or lb when the header says so): one strength workout per date."""


def _column(header: str) -> str:
    """Return a header's column name: lower-case, words joined by "_", a unit in () dropped."""
    words = header.lower().split("(")[0].replace("-", " ").replace("_", " ").split()
    return "_".join(words)


def read_csv(data: bytes, name: str) -> list[Found]:
    """Return the workouts of a CSV in either documented layout, rejecting bad rows one by one."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(name, "it is not UTF-8 text") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    header = next(rows, None)
    if header is None:
        raise UnreadableFile(name, "it is empty")
    columns = [_column(h) for h in header]
    pounds = any("(lb" in h.lower() or h.lower().endswith("_lbs") for h in header)
    layout = csv_layout(header)
    if layout is None:
        missing = {"date", "duration", "type"} - set(columns)
        raise UnreadableFile(
            name,
            f"its header lacks {', '.join(sorted(missing))}: expected "
            f"{','.join(WORKOUT_COLUMNS)} or {','.join(STRENGTH_COLUMNS)}",
        )
    lines = list(_rows(rows, columns, name))
    if layout == "strength":
        return _strength_workouts(lines, name, 0.45359237 if pounds else 1.0)
    return [_csv_workout(where, row) for where, row in lines]


def csv_layout(header: list[str]) -> str | None:
    """Return which documented layout a CSV header is ("workouts", "strength"), or None."""
    columns = {_column(h) for h in header}
    if {"exercise", "reps"} <= columns:
        return "strength"
    if {"date", "duration", "type"} <= columns:
        return "workouts"
    return None


def _rows(rows: Iterator[list[str]], columns: list[str], name: str) -> Iterator[tuple[str, dict]]:
    """Yield (where, row as a dict) for each non-empty line; spreadsheet numbering (header: 1)."""
    count = 0
    try:
        for number, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            if count > MAX_ROWS:
                raise UnreadableFile(name, f"it has more than {MAX_ROWS} rows; split it")
            yield (
                f"{name} row {number}",
                dict(zip(columns, (cell.strip() for cell in row), strict=False)),
            )
    except csv.Error as exc:
        raise UnreadableFile(name, f"it is not valid CSV ({exc})") from None


def _date(row: dict[str, str]) -> dt.date:
    try:
        return dt.date.fromisoformat(row.get("date", ""))
    except ValueError:
        raise ValueError(f"date {row.get('date', '')!r} is not YYYY-MM-DD") from None


def _number(row: dict[str, str], column: str, unit: str, zero: bool = False) -> float | None:
    """Return the column's positive number (or 0 if ``zero``), None if empty; else raise."""
    raw = row.get(column, "")
    if not raw:
        return None
    value = 0.0 if zero and _is_zero(raw) else positive(raw)
    if value is None:
        raise ValueError(f"{column} {raw!r} is not a positive number of {unit}")
    return value


def _is_zero(raw: str) -> bool:
    try:
        return float(raw) == 0
    except ValueError:
        return False


def _csv_workout(where: str, row: dict[str, str]) -> Found:
    try:
        day = _date(row)
        start = dt.time.fromisoformat(row["start_time"]) if row.get("start_time") else None
        minutes = _number(row, "duration", "minutes")
        if minutes is None:
            raise ValueError("duration is empty")
        began = dt.datetime.combine(day, start or CSV_DEFAULT_START, tzinfo=dt.UTC)
        return Activity(
            where=where,
            sports=(row.get("type", ""),),
            start_time=began,
            end_time=began + dt.timedelta(minutes=minutes),
            distance_km=_number(row, "distance", "km"),
            calories_burned=_number(row, "calories", "kcal"),
        )
    except (ValueError, OverflowError) as exc:
        return Rejection(where, str(exc))


def _strength_workouts(lines: list[tuple[str, dict]], name: str, to_kg: float) -> list[Found]:
    """Group a strength log's sets by date: one strength workout per day, its sets in order."""
    days: dict[dt.date, list[dict[str, Any]]] = {}
    found: list[Found] = []
    for where, row in lines:
        try:
            day = _date(row)
            days.setdefault(day, []).append(_strength_set(row, to_kg))
        except ValueError as exc:
            found.append(Rejection(where, str(exc)))
    for day, sets in sorted(days.items()):
        began = dt.datetime.combine(day, CSV_DEFAULT_START, tzinfo=dt.UTC)
        minutes = STRENGTH_MINUTES_PER_SET * len(sets)
        found.append(
            Activity(
                where=f"{name} {day.isoformat()}",
                sports=("strength",),
                start_time=began,
                end_time=began + dt.timedelta(minutes=min(minutes, MAX_WORKOUT_MINUTES)),
                sets=tuple(sets),
            )
        )
    return found


def _strength_set(row: dict[str, str], to_kg: float) -> dict[str, Any]:
    exercise = row.get("exercise", "")
    if not exercise or not exercise.isprintable() or len(exercise) > 64:
        raise ValueError("exercise is empty, too long or not printable text")
    reps = row.get("reps", "")
    if not reps.isdigit() or not 1 <= int(reps) <= 1000:
        raise ValueError(f"reps {reps!r} is not a whole number from 1 to 1000")
    one: dict[str, Any] = {"exercise": exercise, "reps": int(reps)}
    muscle = row.get("muscle_group", "")
    if muscle and muscle.isprintable() and len(muscle) <= 32:
        one["muscle_group"] = muscle
    weight = _number(row, "weight", "kg", zero=True)  # 0: a bodyweight exercise
    if weight is not None:
        if weight * to_kg > 1000:
            raise ValueError(f"weight {row['weight']!r} is over 1000 kg")
        one["weight_kg"] = round(weight * to_kg, 2)
    return one


READERS: dict[str, Reader] = {
    ".gpx": read_gpx,
    ".tcx": read_tcx,
    ".fit": read_fit,
    ".csv": read_csv,
}
