"""The area stage's registry: each area's sensors, with their first time and position.

For a file, every sensor is known before the run (`file_registry`: one pass over it, positions
and first times only), so every area knows whom to wait for from the start and the results are
the same for every worker layout. A CSV of readings builds it from its own first pass
(`registry_of`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from preparation.neighbours import areas_near
from sources.payload import DEFAULT_WINDOW, PayloadError, check_field_names
from sources.times import TimeWindow

#: Area -> sensor -> (first event time, latitude, longitude).
Registry = dict[str, dict[int, tuple[int, float, float]]]


def file_registry(
    path: str | Path, area_km: float, radius_km: float, window: TimeWindow = DEFAULT_WINDOW
) -> Registry:
    """Every sensor of a JSON-lines payload file, by the areas it belongs to or reaches: its first
    event time and position (one pass over the file, positions only). With it each area knows
    its members before their first reading arrives, so which windows wait for whom is the same
    whatever the worker layout. Lines that are not payloads, and rows whose time is outside
    `window`, are skipped (they are dead letters in the flow)."""
    first: dict[int, tuple[int, float, float]] = {}
    number = (int, float)
    low, high = window.bounds()
    with open(path, "rb") as fh:
        for line in fh:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            fields = doc.get("fields") if type(doc) is dict else None
            rows = doc.get("data") if type(doc) is dict else None
            if type(fields) is not list or type(rows) is not list:
                continue
            if not {"sensor_index", "latitude", "longitude"} <= set(map(str, fields)):
                continue
            try:  # names the source refuses: the payload's rows are dead letters
                check_field_names([str(name) for name in fields])
            except PayloadError:
                continue
            s, lat, lon = (fields.index(n) for n in ("sensor_index", "latitude", "longitude"))
            t = fields.index("last_seen") if "last_seen" in fields else None
            stamp = doc.get("data_time_stamp")
            for row in rows:
                if type(row) is not list or len(row) != len(fields):
                    continue
                sensor, when = row[s], stamp if t is None else row[t]
                a, b = row[lat], row[lon]
                known = type(sensor) is not int or type(when) is not int or sensor in first
                known = known or not low <= when <= high
                placed = type(a) in number and type(b) in number and abs(a) <= 90 and abs(b) <= 180
                if placed and not known:
                    first[sensor] = (when, float(a), float(b))
    return registry_of(first, area_km, radius_km)


def registry_of(
    first: dict[int, tuple[int, float, float]], area_km: float, radius_km: float
) -> Registry:
    """The registry of sensors given by their first (time, latitude, longitude)."""
    registry: Registry = {}
    for sensor, (when, lat_, lon_) in first.items():
        for area in areas_near(lat_, lon_, area_km, radius_km):
            registry.setdefault(area, {})[sensor] = (when, lat_, lon_)
    return registry
