"""Activity files made here, never downloaded: GPX by gpxpy, TCX as text, FIT by fit-tool.

Each maker takes the activity's start, length and sport, and puts a track point every second
(as watches record), so the files look like what people bring.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET

import gpxpy.gpx
from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.activity_message import ActivityMessage
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.messages.set_message import SetMessage
from fit_tool.profile.profile_type import FileType, Manufacturer, SetType, Sport, SubSport

# Near Zurich; a point moves ~2.8 m a second (10 km/h) and climbs on a gentle wave.
LAT, LON = 47.3769, 8.5417
METRES_PER_DEGREE = 111_320


def _track(start: dt.datetime, seconds: int):
    """Yield (time, lat, lon, elevation, heart rate) once a second."""
    for i in range(seconds + 1):
        north = i * 2.8 / METRES_PER_DEGREE
        yield (
            start + dt.timedelta(seconds=i),
            LAT + north,
            LON,
            400 + 20 * math.sin(i / 300),
            120 + (i % 30),
        )


def gpx(
    start: dt.datetime, minutes: float, sport: str | None = "running", hr: bool = True
) -> bytes:
    """Return a one-track GPX 1.1 file with Garmin's heart-rate extension."""
    doc = gpxpy.gpx.GPX()
    doc.nsmap["gpxtpx"] = "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
    track = gpxpy.gpx.GPXTrack(name="Morning run")
    track.type = sport
    segment = gpxpy.gpx.GPXTrackSegment()
    for moment, lat, lon, elevation, heart_rate in _track(start, int(minutes * 60)):
        point = gpxpy.gpx.GPXTrackPoint(lat, lon, elevation=elevation, time=moment)
        if hr:  # gpxpy keeps extensions as ElementTree elements
            ext = ET.Element("gpxtpx:TrackPointExtension")
            ET.SubElement(ext, "gpxtpx:hr").text = str(heart_rate)
            point.extensions.append(ext)
        segment.points.append(point)
    track.segments.append(segment)
    doc.tracks.append(track)
    return doc.to_xml().encode()


def tcx(start: dt.datetime, minutes: float, sport: str = "Biking", calories: int = 300) -> bytes:
    """Return a one-lap TCX file (Garmin Training Center v2)."""
    points = []
    for moment, lat, lon, elevation, heart_rate in _track(start, int(minutes * 60)):
        metres = (moment - start).total_seconds() * 2.8
        points.append(
            f"<Trackpoint><Time>{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}</Time>"
            f"<Position><LatitudeDegrees>{lat:.7f}</LatitudeDegrees>"
            f"<LongitudeDegrees>{lon:.7f}</LongitudeDegrees></Position>"
            f"<AltitudeMeters>{elevation:.1f}</AltitudeMeters>"
            f"<DistanceMeters>{metres:.1f}</DistanceMeters>"
            f"<HeartRateBpm><Value>{heart_rate}</Value></HeartRateBpm></Trackpoint>"
        )
    distance = minutes * 60 * 2.8
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<TrainingCenterDatabase xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2">'
        f'<Activities><Activity Sport="{sport}"><Id>{start.strftime("%Y-%m-%dT%H:%M:%SZ")}</Id>'
        f'<Lap StartTime="{start.strftime("%Y-%m-%dT%H:%M:%SZ")}">'
        f"<TotalTimeSeconds>{minutes * 60:.0f}</TotalTimeSeconds>"
        f"<DistanceMeters>{distance:.1f}</DistanceMeters><Calories>{calories}</Calories>"
        f"<Intensity>Active</Intensity><TriggerMethod>Manual</TriggerMethod>"
        f"<Track>{''.join(points)}</Track></Lap></Activity></Activities>"
        "</TrainingCenterDatabase>"
    ).encode()


def fit(
    start: dt.datetime,
    minutes: float,
    sport: Sport = Sport.RUNNING,
    sub_sport: SubSport = SubSport.GENERIC,
    calories: int = 400,
    sets: tuple[tuple[int, float], ...] = (),
) -> bytes:
    """Return a FIT activity file: records once a second, one session, and strength sets."""
    millis = round(start.timestamp() * 1000)
    builder = FitFileBuilder(auto_define=True, min_string_size=50)
    file_id = FileIdMessage()
    file_id.type = FileType.ACTIVITY
    file_id.manufacturer = Manufacturer.DEVELOPMENT.value
    file_id.product = 0
    file_id.time_created = millis
    file_id.serial_number = 0x12345678
    builder.add(file_id)
    seconds = int(minutes * 60)
    records = []
    for moment, lat, lon, elevation, heart_rate in _track(start, seconds if not sets else 0):
        record = RecordMessage()
        record.timestamp = round(moment.timestamp() * 1000)
        record.position_lat, record.position_long = lat, lon
        record.altitude = elevation
        record.heart_rate = heart_rate
        record.distance = (moment - start).total_seconds() * 2.8
        records.append(record)
    builder.add_all(records)
    for reps, weight in sets:
        one = SetMessage()
        one.timestamp = millis
        one.set_type = SetType.ACTIVE
        one.repetitions = reps
        one.weight = weight
        builder.add(one)
    session = SessionMessage()
    session.timestamp = millis + seconds * 1000
    session.start_time = millis
    session.total_elapsed_time = seconds
    session.total_timer_time = seconds
    session.sport = sport
    session.sub_sport = sub_sport
    session.total_distance = 0 if sets else seconds * 2.8
    session.total_calories = calories
    session.avg_heart_rate = 134
    session.total_ascent = 25
    builder.add(session)
    activity = ActivityMessage()
    activity.timestamp = millis + seconds * 1000
    activity.num_sessions = 1
    builder.add(activity)
    return builder.build().to_bytes()
