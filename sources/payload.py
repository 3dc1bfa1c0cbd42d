"""PurpleAir `GET /v1/sensors` payloads turned into typed readings or dead letters.

A payload is `{"fields": [...], "data": [[...], ...], "data_time_stamp": ..., ...}`: one row per
sensor, values in `fields` order. Every row becomes exactly one `Reading` or one `DeadLetter`, so
rows in = readings out + dead letters; a line that is not a payload at all is one dead letter.
A row dated outside the source's plausible window (`sources.times`) is a dead letter too, and so
is every row of a payload naming a field longer than `MAX_FIELD_NAME` or not valid Unicode.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from typing import Any

import orjson

from core.readings import DeadLetter, Item, Reading
from sources.times import EPOCH_RANGE, TimeWindow

#: Fields the API returns as text; they are carried along, never validated as numbers.
TEXT_FIELDS = frozenset(
    {"name", "model", "hardware", "firmware_version", "firmware_upgrade", "private_info"}
)
#: The longest field name read (PurpleAir's are under 30 characters): a payload naming a longer
#: one is dead letters, so a hostile name is not copied into every reading written.
MAX_FIELD_NAME = 100
#: The times a reading may have unless a source is told otherwise (`sources.times`).
DEFAULT_WINDOW = TimeWindow()
#: The largest sensor_index: what a signed 64-bit column (SQLite, PostgreSQL bigint) holds.
MAX_SENSOR_INDEX = 2**63 - 1
#: Fields that identify a row or give its time; not part of `Reading.values`.
ID_FIELDS = frozenset({"sensor_index", "last_seen"})


class PayloadError(ValueError):
    """The payload as a whole does not fit the API's shape."""


class RowError(ValueError):
    """One row of a payload does not fit its `fields`."""


@dataclass(slots=True)
class PayloadShape:
    """What is needed to parse the rows of one payload: field positions and a default time."""

    fields: list[str]
    rows: list[Any]
    data_time_stamp: int | None
    sensor_pos: int | None
    time_pos: int | None
    numeric: list[tuple[str, int]] = field(default_factory=list)  # (name, position)
    text: list[tuple[str, int]] = field(default_factory=list)
    window: TimeWindow = DEFAULT_WINDOW
    bounds: tuple[int, int] = EPOCH_RANGE  # the window's bounds when the payload was read


def decode_line(line: str | bytes) -> Any:
    """Parse one JSON document; raise `PayloadError` with a readable reason when it is not JSON.

    orjson decodes strict JSON several times faster than the standard library; only what it
    refuses goes to `json`, which says where the text breaks and lets NaN/Infinity tokens through
    to the row checks, which name the field. Bytes must be UTF-8 (a byte-order mark is allowed):
    decoding raises UnicodeDecodeError, a ValueError, as `json` does for bad syntax and integers
    of more than 4,300 digits; `json` raises RecursionError for nesting deeper than the
    interpreter's stack (orjson stops at 1,024 levels).

    >>> decode_line(b"[" * 5000)
    Traceback (most recent call last):
    ...
    sources.payload.PayloadError: not JSON: nested deeper than the decoder can follow
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:  # JSON is UTF-8 (RFC 8259); json.loads would also take UTF-16, UTF-32 and surrogates
        return json.loads(line.decode("utf-8-sig") if isinstance(line, bytes) else line)
    except ValueError as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    except RecursionError:
        raise PayloadError("not JSON: nested deeper than the decoder can follow") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def payload_shape(payload: Any, window: TimeWindow = DEFAULT_WINDOW) -> PayloadShape:
    """Check a decoded payload's envelope; raise `PayloadError` naming what is wrong. The rows'
    times will be checked against `window` as it stands now."""
    if not isinstance(payload, dict):
        raise PayloadError(f"payload is a JSON {type(payload).__name__}, not an object")
    fields = payload.get("fields")
    if not isinstance(fields, list):
        raise PayloadError("payload has no 'fields' list of names")
    try:
        sensor_pos, time_pos, numeric, text, repeated = _layout(tuple(fields))
    except TypeError:  # a field that is no str (nor hashable)
        raise PayloadError("payload has no 'fields' list of names") from None
    rows = payload.get("data")
    if not isinstance(rows, list):
        raise PayloadError("payload has no 'data' list")
    if repeated:
        raise PayloadError("payload 'fields' has repeated names")
    stamp = payload.get("data_time_stamp")
    if stamp is not None and not _is_int(stamp):
        raise PayloadError("payload 'data_time_stamp' is not an integer")
    if stamp is not None and not EPOCH_RANGE[0] <= stamp <= EPOCH_RANGE[1]:
        raise PayloadError(f"payload 'data_time_stamp' {stamp} is not a time (years 1–9999)")
    if time_pos is None and stamp is None:
        raise PayloadError("payload has neither a 'last_seen' field nor 'data_time_stamp'")
    return PayloadShape(
        fields, rows, stamp, sensor_pos, time_pos, numeric, text, window, window.bounds()
    )


@functools.lru_cache(maxsize=256)
def _layout(
    fields: tuple[str, ...],
) -> tuple[int | None, int | None, list[tuple[str, int]], list[tuple[str, int]], bool]:
    """A field list's checked names and positions, once per distinct list (a file's polls
    share a few): sensor_index's and last_seen's positions, the numeric and text fields (lists
    shared by every payload of that layout: read only), whether a name repeats. Raises
    `PayloadError` (not cached) for a name that is no str, too long or not valid Unicode."""
    if not all(isinstance(f, str) for f in fields):
        raise PayloadError("payload has no 'fields' list of names")
    check_field_names(list(fields))
    time_pos = fields.index("last_seen") if "last_seen" in fields else None
    sensor_pos = fields.index("sensor_index") if "sensor_index" in fields else None
    numeric = [(f, i) for i, f in enumerate(fields) if f not in ID_FIELDS and f not in TEXT_FIELDS]
    text = [(f, i) for i, f in enumerate(fields) if f in TEXT_FIELDS]
    return sensor_pos, time_pos, numeric, text, len(set(fields)) != len(fields)


def check_field_names(names: list[str]) -> None:
    """Raise `PayloadError` for a field name longer than `MAX_FIELD_NAME` or not valid Unicode
    (json lets lone surrogates through; no JSON line holding one can be read back).

    >>> check_field_names(["sensor_index", "x" * 101])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sources.payload.PayloadError: payload field name 'xxx...' has 101 characters, more than 100
    """
    for name in names:
        if len(name) > MAX_FIELD_NAME:
            shown = ascii(name[:40])[:-1] + "...'"
            reason = f"has {len(name)} characters, more than {MAX_FIELD_NAME}"
            raise PayloadError(f"payload field name {shown} {reason}")
        if not name.isascii():
            try:
                name.encode()
            except UnicodeEncodeError:
                shown = ascii(name)
                raise PayloadError(f"payload field name {shown} is not valid Unicode") from None


def row_sensor(shape: PayloadShape, row: Any) -> int | None:
    """The row's sensor_index when it is a usable integer, else None (a dead letter then)."""
    if shape.sensor_pos is None or type(row) is not list or len(row) != len(shape.fields):
        return None
    value = row[shape.sensor_pos]
    return value if type(value) is int else None


def row_sensors(shape: PayloadShape) -> list[int | None]:
    """`row_sensor` of every row, in one comprehension rather than a call per row."""
    pos, width = shape.sensor_pos, len(shape.fields)
    if pos is None:
        return [None] * len(shape.rows)
    return [
        row[pos] if type(row) is list and len(row) == width and type(row[pos]) is int else None
        for row in shape.rows
    ]


def parse_row(shape: PayloadShape, row: Any) -> Reading:
    """Turn one row into a `Reading`; raise `RowError` with the reason when it does not fit.

    Hot path: exact-type tests first, so a good row costs no call but `float()` for its ints.
    """
    fields = shape.fields
    if not isinstance(row, list):
        raise RowError(f"row is a JSON {type(row).__name__}, not an array")
    if len(row) != len(fields):
        raise RowError(f"row has {len(row)} values but 'fields' names {len(fields)}")
    if shape.sensor_pos is None:
        raise RowError("no sensor_index: 'fields' does not name it")
    sensor = row[shape.sensor_pos]
    if type(sensor) is not int and not _is_int(sensor):
        raise RowError(f"sensor_index is {_describe(sensor)}, not an integer")
    if sensor >> 63:  # not in 0..MAX_SENSOR_INDEX (negative, or more than 63 bits): one shift
        raise RowError(f"sensor_index {sensor} is not an index (0 to 2**63 - 1)")
    low, high = shape.bounds
    if shape.time_pos is None:
        time = shape.data_time_stamp
        if not low <= time <= high:
            raise RowError(shape.window.refusal("data_time_stamp", time, shape.bounds))
    else:
        time = row[shape.time_pos]
        if type(time) is not int and not _is_int(time):
            raise RowError(f"last_seen is {_describe(time)}, not an integer")
        if not low <= time <= high:
            if not EPOCH_RANGE[0] <= time <= EPOCH_RANGE[1]:
                raise RowError(f"last_seen {time} is not a time (years 1–9999)")
            raise RowError(shape.window.refusal("last_seen", time, shape.bounds))
    values: dict[str, float | None] = {}
    for name, pos in shape.numeric:
        value = row[pos]
        if type(value) is float:
            if value - value:  # NaN or ±inf
                raise RowError(f"field {name!r} is {value!r}, not a finite number")
        elif type(value) is int:
            try:
                value = float(value)
            except OverflowError:  # json (the fallback) reads any number of digits
                raise RowError(f"field {name!r} is an integer too large for a float") from None
        elif value is not None:
            raise RowError(f"field {name!r} is {_describe(value)}, not a number")
        values[name] = value
    text: dict[str, str | None] = {}
    for name, pos in shape.text:
        value = row[pos]
        if value is not None:
            if type(value) is not str:
                raise RowError(f"field {name!r} is {_describe(value)}, not text")
            if not value.isascii():  # json (the fallback) lets lone surrogates through
                try:
                    value.encode()
                except UnicodeEncodeError:
                    reason = f"field {name!r} is not valid Unicode (a lone surrogate)"
                    raise RowError(reason) from None
        text[name] = value
    return Reading(sensor, time, values, text)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, float):
        return repr(value)
    return f"a JSON {type(value).__name__}"


def parse_payload(
    payload: Any,
    *,
    origin: str = "",
    owner: Callable[[int | None], bool] | None = None,
    window: TimeWindow = DEFAULT_WINDOW,
) -> Iterator[Item]:
    """Yield one `Reading` or `DeadLetter` per row of a decoded payload.

    A row whose time is outside `window` (as it stands when the payload is read) is a dead
    letter, so an implausible time never reaches a sensor's state.

    `owner(sensor_index_or_None) -> bool` lets a worker take only its own rows (by sensor, so a
    sensor's readings stay in order); an envelope error yields one dead letter per row (or one for
    the payload when it has no rows list), from the worker that owns unidentified rows.
    """
    take = owner or (lambda _sensor: True)
    try:
        shape = payload_shape(payload, window)
    except PayloadError as exc:
        rows = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(rows, list) and rows:
            for i, row in enumerate(rows):
                if take(None):
                    yield DeadLetter(str(exc), row, f"{origin}#row{i}")
        elif take(None):
            yield DeadLetter(str(exc), payload, origin)
        return
    numbered: Iterator[tuple[int, Any]] = enumerate(shape.rows)
    if owner is not None:  # owner is still called once per row, in order, as rows are reached
        numbered = compress(numbered, map(take, row_sensors(shape)))
    for i, row in numbered:
        try:
            yield parse_row(shape, row)
        except RowError as exc:
            yield DeadLetter(str(exc), row, f"{origin}#row{i}")
