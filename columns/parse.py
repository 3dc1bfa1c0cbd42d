"""A decoded PurpleAir payload turned into one shard's `Columns` and its `DeadLetter`s at once.

The twin of `sources.payload.parse_payload`: the same rows become readings (the same sensor,
time, values and text) and the same rows become dead letters (the same reason, raw row and
origin `name:line#rowN`), and `owner` picks a shard's rows exactly as it does there. What
changes is the cost: a clean payload is checked and converted column by column, in C, not row
by row in Python. The check is exact, because numpy's own conversion is not (it turns `"7"`
into 7.0 and `true` into 1.0): every numeric field holds only int, float or None, every
`sensor_index` is an int in 0..2**63 - 1, every `last_seen` an int, every float
is finite and every int fits a float; every time (`last_seen`, or `data_time_stamp` when there
is none) is in the payload's plausible window (`sources.times`). Only the rows that fail a check
go through `parse_row`, which names the reason, so a reason is always the per-reading path's own.

>>> t = 1775001600
>>> payload = {"fields": ["sensor_index", "last_seen", "pm1.0_cf_1"], "data_time_stamp": t,
...            "data": [[7, t, 1], [8, t, "x"], [9, t, None]]}
>>> parsed = parse_columns(payload, origin="polls.jsonl:1")
>>> parsed.columns.sensors.tolist(), parsed.columns.values.ravel().tolist()
([7, 9], [1.0, nan])
>>> [(d.reason, d.origin) for d in parsed.dead]
[("field 'pm1.0_cf_1' is a string ('x'), not a number", 'polls.jsonl:1#row1')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, compress
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np

from columns.batch import Columns
from core.readings import DeadLetter, Reading
from sources.payload import (
    DEFAULT_WINDOW,
    MAX_SENSOR_INDEX,
    PayloadError,
    PayloadShape,
    RowError,
    parse_payload,
    parse_row,
    payload_shape,
)
from sources.times import TimeWindow

_NONE = type(None)
_NUMBER = frozenset({int, float, _NONE})
_TEXT = frozenset({str, _NONE})
_INT = frozenset({int})


class ParsedPayload(NamedTuple):
    """One shard's share of a payload: its readings as columns, its dead letters, and the row
    (its index in the payload's `data`) of each, so the two can be put back in row order."""

    columns: Columns
    rows: np.ndarray  # int64 (len(columns),): each column row's index in the payload's rows
    dead: list[DeadLetter]
    dead_rows: list[int]  # each dead letter's row (its index among them for a payload error)


def empty_columns(fields: Sequence[str] = (), origin: str = "") -> Columns:
    """A `Columns` of no rows over `fields`."""
    none = np.zeros(0, np.int64)
    return Columns(none, none.copy(), tuple(fields), np.zeros((0, len(fields))), None, origin)


def parse_columns(
    payload: Any,
    *,
    origin: str = "",
    owner: Callable[[int | None], bool] | None = None,
    window: TimeWindow = DEFAULT_WINDOW,
) -> ParsedPayload:
    """This shard's rows of a decoded payload as `Columns`, the rest of its rows dead letters.

    `owner(sensor_index_or_None) -> bool` is `parse_payload`'s: a row is this shard's when its
    owner says so, by its sensor_index when that is an int, else by None (rows without a usable
    sensor, and every row of a payload whose envelope is broken, belong to one shard); `window`
    is `parse_payload`'s.
    """
    try:
        shape = payload_shape(payload, window)
    except PayloadError:  # no rows to read: parse_payload's dead letters, one per row or one
        dead = list(parse_payload(payload, origin=origin, owner=owner, window=window))
        return ParsedPayload(empty_columns(origin=origin), _NO_ROWS, dead, list(range(len(dead))))
    names = [name for name, _ in shape.numeric]
    rows, width = shape.rows, len(shape.fields)
    if shape.sensor_pos is None or not rows:  # no row can be a reading
        return _by_rows(shape, range(len(rows)), origin, owner, names)
    if set(map(type, rows)) == {list} and set(map(len, rows)) == {width}:
        shaped: list[int] | None = None  # every row is a list of the right length
        odd: list[int] = []
    else:
        fits = [type(row) is list and len(row) == width for row in rows]
        shaped = list(compress(range(len(rows)), fits))
        odd = [i for i, fit in enumerate(fits) if not fit]
    if owner is not None:
        odd = odd if odd and owner(None) else []
        index = range(len(rows)) if shaped is None else shaped
        some = rows if shaped is None else [rows[i] for i in shaped]
        sensors = list(map(itemgetter(shape.sensor_pos), some))
        if set(map(type, sensors)) != _INT:  # a bool or float sensor_index: owned as None
            sensors = [s if type(s) is int else None for s in sensors]
        owned = getattr(getattr(owner, "__self__", None), "owned", None)  # sensor_owner's memo
        mine = owned(sensors) if owned is not None else map(owner, sensors)
        shaped = list(compress(index, mine))
    count = len(rows) if shaped is None else len(shaped)
    if count <= FEW_ROWS:  # nothing or a few rows here (a long history's polls of one sensor)
        few = list(range(len(rows))) if shaped is None else shaped
        return _row_by_row(shape, sorted(odd + few), origin, names)
    taken = rows if shaped is None else [rows[i] for i in shaped]
    index = np.arange(len(rows)) if shaped is None else np.array(shaped, np.int64)
    table = np.fromiter(chain.from_iterable(taken), object, len(taken) * width)
    table = table.reshape(len(taken), width)
    bad, values = _checked(shape, table)
    flagged = sorted(odd + index[bad].tolist())
    if bad.any():
        good = ~bad
        table, index, values = table[good], index[good], values[good]
    columns = _convert(shape, table, values, names, origin)
    return _with_flagged(shape, columns, index, flagged, origin)


_NO_ROWS = np.zeros(0, np.int64)
#: Up to this many rows, `parse_row` row by row is cheaper than the column checks.
FEW_ROWS = 4


def _row_by_row(
    shape: PayloadShape, rows: list[int], origin: str, names: list[str]
) -> ParsedPayload:
    """Rows `rows` (in order) of a payload, each through `parse_row`: a reading or a dead
    letter with its reason."""
    readings, index, dead, dead_rows = [], [], [], []
    if not rows:  # none of the payload's rows is this shard's
        columns = empty_columns(names, origin)
        columns.text = [] if shape.text else None
        return ParsedPayload(columns, _NO_ROWS, [], [])
    for i in rows:
        row = shape.rows[i]
        try:
            readings.append(parse_row(shape, row))
            index.append(i)
        except RowError as exc:
            dead.append(DeadLetter(str(exc), row, f"{origin}#row{i}"))
            dead_rows.append(i)
    n = len(readings)
    columns = Columns(
        np.array([r.sensor_index for r in readings], np.int64),
        np.array([r.time for r in readings], np.int64),
        tuple(names),
        np.array(
            [[np.nan if v is None else v for v in r.values.values()] for r in readings],
            np.float64,
        ).reshape(n, len(names)),
        [r.text for r in readings] if shape.text else None,
        origin,
    )
    return ParsedPayload(columns, np.array(index, np.int64), dead, dead_rows)


def _checked(shape: PayloadShape, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of `table` (one row a payload row, as objects) that `parse_row` may refuse, and
    every row's numeric fields as floats (valid in the other rows). Each check is exact for the
    rows it passes; a flagged row is parsed alone, which names why."""
    bad = np.zeros(len(table), bool)
    numbers = table[:, [pos for _, pos in shape.numeric]]
    for _, pos in shape.text:
        bad |= _text_bad(table[:, pos])
    if not set(map(type, numbers.ravel())) <= _NUMBER:
        for j in range(numbers.shape[1]):
            column = numbers[:, j]
            if not set(map(type, column)) <= _NUMBER:
                bad |= _types_bad(column, _NUMBER)
    bad |= _int_bad(table[:, shape.sensor_pos], 0, MAX_SENSOR_INDEX)
    if shape.time_pos is not None:
        bad |= _int_bad(table[:, shape.time_pos], *shape.bounds)
    elif not shape.bounds[0] <= shape.data_time_stamp <= shape.bounds[1]:
        bad[:] = True  # every row's time is the stamp's
    values = np.full(numbers.shape, np.nan)
    if numbers.size:
        _numbers(numbers, bad, values)
    return bad, values


def _types_bad(column: np.ndarray, allowed: frozenset[type]) -> np.ndarray:
    return np.fromiter((type(v) not in allowed for v in column), bool, len(column))


def _int_bad(column: np.ndarray, low: int, high: int) -> np.ndarray:
    """Elements that are not an int in low..high (both within int64)."""
    if set(map(type, column)) == _INT:
        try:
            ints = column.astype(np.int64)
        except OverflowError:  # beyond 64 bits: element by element
            pass
        else:
            return (ints < low) | (ints > high)
    return np.fromiter(
        (type(v) is not int or not low <= v <= high for v in column), bool, len(column)
    )


def _numbers(numbers: np.ndarray, bad: np.ndarray, values: np.ndarray) -> None:
    """Convert the numeric fields (int, float or None in rows not yet `bad`) into `values`,
    and flag the rows where that is not exact: an int beyond a float's range, a NaN or an
    infinity that was in the row (NaN stands for None)."""
    rows = np.flatnonzero(~bad)
    part = numbers if len(rows) == len(numbers) else numbers[rows]
    try:
        floats = part.astype(np.float64)
    except OverflowError:  # an int beyond a float's range: find its rows
        too_big = np.fromiter((_overflows(row) for row in part), bool, len(part))
        bad[rows[too_big]] = True
        rows, part = rows[~too_big], part[~too_big]
        floats = part.astype(np.float64)
    r, c = np.nonzero(~np.isfinite(floats))
    if len(r):
        bad[rows[r[~np.equal(part[r, c], None)]]] = True
    values[rows] = floats


def _overflows(row: np.ndarray) -> bool:
    for value in row:
        if type(value) is int:
            try:
                float(value)
            except OverflowError:
                return True
    return False


def _text_bad(column: np.ndarray) -> np.ndarray:
    """Elements that are not None or valid Unicode text (json lets lone surrogates through)."""
    out = np.zeros(len(column), bool)
    for i, value in enumerate(column):
        if value is None:
            continue
        if type(value) is not str:
            out[i] = True
        elif not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                out[i] = True
    return out


def _convert(
    shape: PayloadShape, table: np.ndarray, values: np.ndarray, names: list[str], origin: str
) -> Columns:
    """`Columns` of rows that passed every check (so every conversion below is exact)."""
    n = len(table)
    sensors = table[:, shape.sensor_pos].astype(np.int64)
    if shape.time_pos is None:
        times = np.full(n, shape.data_time_stamp, np.int64)
    else:
        times = table[:, shape.time_pos].astype(np.int64)
    text = None
    if shape.text:
        text_names = [name for name, _ in shape.text]
        cells = table[:, [pos for _, pos in shape.text]].tolist()
        text = [dict(zip(text_names, row, strict=True)) for row in cells]
    return Columns(sensors, times, tuple(names), values, text, origin)


def _with_flagged(
    shape: PayloadShape, columns: Columns, index: np.ndarray, flagged: list[int], origin: str
) -> ParsedPayload:
    """Parse the flagged rows one by one: a dead letter each, with `parse_row`'s reason (or,
    should a check have flagged a good row, its reading, put back in row order)."""
    dead, dead_rows, kept = [], [], []
    for i in flagged:
        row = shape.rows[i]
        try:
            kept.append((i, parse_row(shape, row)))
        except RowError as exc:
            dead.append(DeadLetter(str(exc), row, f"{origin}#row{i}"))
            dead_rows.append(i)
    if kept:
        columns, index = _merge(columns, index, kept)
    return ParsedPayload(columns, index, dead, dead_rows)


def _merge(
    columns: Columns, index: np.ndarray, kept: list[tuple[int, Reading]]
) -> tuple[Columns, np.ndarray]:
    more = Columns(
        np.array([r.sensor_index for _, r in kept], np.int64),
        np.array([r.time for _, r in kept], np.int64),
        columns.fields,
        np.array(
            [[np.nan if v is None else v for v in r.values.values()] for _, r in kept], np.float64
        ).reshape(len(kept), len(columns.fields)),
        None if columns.text is None else [r.text for _, r in kept],
        columns.origin,
    )
    rows = np.concatenate([index, np.array([i for i, _ in kept], np.int64)])
    order = np.argsort(rows, kind="stable")
    text = None
    if columns.text is not None:
        both = columns.text + (more.text or [])
        text = [both[i] for i in order]
    merged = Columns(
        np.concatenate([columns.sensors, more.sensors])[order],
        np.concatenate([columns.times, more.times])[order],
        columns.fields,
        np.concatenate([columns.values, more.values])[order],
        text,
        columns.origin,
    )
    return merged, rows[order]


def _by_rows(
    shape: PayloadShape,
    rows: range,
    origin: str,
    owner: Callable[[int | None], bool] | None,
    names: list[str],
) -> ParsedPayload:
    """A payload none of whose rows can be a reading (no sensor_index field, or no rows)."""
    flagged = list(rows) if owner is None or owner(None) else []
    columns = empty_columns(names, origin)
    if shape.text:
        columns.text = []
    return _with_flagged(shape, columns, _NO_ROWS, flagged, origin)
