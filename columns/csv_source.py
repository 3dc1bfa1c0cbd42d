"""`CsvColumnSource`: a CSV of readings read as column batches, in fixed sensor shards, resumable.

The file: a header naming `sensor_index`, `time` and the reading's fields, then one row per
reading, e.g.

    sensor_index,time,humidity,pm1.0_cf_1
    131075,2026-04-01T00:00:00Z,31,2.1
    131075,1775001720,,2.4

- `sensor_index`: an integer from 0 to 2**63 - 1;
- `time`: epoch seconds (an integer) or ISO 8601 (a date, or a date-time in whole seconds;
  without an offset it is UTC), years 1 to 9999, and within the source's plausible `window`
  (`sources.times`; outside it: a dead letter);
- every other column is a field of `Reading.values`, in header order: a finite number, or
  missing when empty (or `nan`, `NA`, `null`, `none`), as `dataflows.series` reads values;
  except the columns the PurpleAir API gives as text (`sources.payload.TEXT_FIELDS`), carried as
  text (empty: None).
Cells are split at commas, or by the csv module when the line holds a quote. A row that does
not fit (bytes that are not UTF-8, bad quoting, more or fewer cells than the header, a bad
sensor_index, time or value, a line longer than `MAX_LINE_BYTES`) is a dead letter with the
reason and the raw line; blank lines are not rows. A header without `sensor_index` or `time`,
with a repeated name, a name longer than `sources.payload.MAX_FIELD_NAME`, or not UTF-8, is a
configuration error, raised when the source is built.

Each of `shards` partitions reads the whole file and keeps its sensors' rows (as
`sources.purpleair.sensor_owner` splits them; rows without a usable sensor_index are shard 0's),
`batch_size` lines at a time: one `(shard_key, Columns)` item per batch and its dead letters.
Its resume state is the next line's `Position`. Clean rows are converted column by column; a
column with a cell the fast conversion cannot vouch for is read cell by cell, and a line that
needs the csv module is read alone, by the same rules (`parse_line`, which the tests hold the
column reading to).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from itertools import compress, repeat
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from columns.batch import Columns
from columns.source import ColumnItem, ProgressHook, shard_key
from core.dead_letters import RAW_LIMIT, Prefix
from core.errors import ConfigError
from core.readings import DeadLetter
from preparation.registry import Registry, registry_of
from sources.csv_cells import MISSING_TEXT, RowError, split_cells
from sources.documents import SourceError, skip_rest
from sources.payload import (
    DEFAULT_WINDOW,
    EPOCH_RANGE,
    MAX_FIELD_NAME,
    MAX_SENSOR_INDEX,
    TEXT_FIELDS,
)
from sources.purpleair import sensor_owner
from sources.shards import DEFAULT_SHARDS, Position
from sources.times import TimeWindow, epoch_of

#: The longest line read whole; a longer one is a dead letter with its first bytes.
MAX_LINE_BYTES = 1 << 20


class CsvHeader(NamedTuple):
    """Where the columns are: how many, `sensor_index`'s and `time`'s, each field's."""

    width: int
    sensor: int
    time: int
    numeric: tuple[tuple[str, int], ...]
    text: tuple[tuple[str, int], ...]
    length: int  # bytes of the header line, newline included

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.numeric)


def read_header(path: str | Path) -> CsvHeader:
    """The header of the readings CSV at `path`; a `ConfigError` (one line) when it cannot be
    read as one.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
    ...     _ = f.write("sensor_index,time,name,pm1.0_cf_1\\n")
    >>> header = read_header(f.name); os.remove(f.name)
    >>> header.sensor, header.time, header.numeric, header.text
    (0, 1, (('pm1.0_cf_1', 3),), (('name', 2),))
    """
    try:
        with open(path, "rb") as fh:
            first = fh.readline(MAX_LINE_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(first) == MAX_LINE_BYTES and not first.endswith(b"\n"):
        raise ConfigError(f"{path}: the header is longer than {MAX_LINE_BYTES} bytes")
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the header is not UTF-8 text ({exc.reason})") from None
    try:
        names = [name.strip() for name in split_cells(text)]
    except RowError as exc:
        raise ConfigError(f"{path}: the header is {exc}") from None
    for needed in ("sensor_index", "time"):
        if needed not in names:
            raise ConfigError(f"{path}: the header has no {needed!r} column: {names}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: the header repeats a name: {names}")
    for name in names:
        if len(name) > MAX_FIELD_NAME:
            shown = repr(name[:40])[:-1] + "...'"
            raise ConfigError(
                f"{path}: the header's name {shown} has {len(name)} characters, more than "
                f"{MAX_FIELD_NAME}"
            )
    fields = [(n, i) for i, n in enumerate(names) if n not in ("sensor_index", "time")]
    return CsvHeader(
        len(names),
        names.index("sensor_index"),
        names.index("time"),
        tuple((n, i) for n, i in fields if n not in TEXT_FIELDS),
        tuple((n, i) for n, i in fields if n in TEXT_FIELDS),
        len(first),
    )


class CsvRowError(ValueError):
    """One row of the CSV does not fit its header; the message says why."""


def as_int(text: str) -> int | None:
    """An integer cell (ASCII digits, a sign, spaces around), else None."""
    if text.isascii() and "_" not in text:
        try:
            return int(text)
        except ValueError:
            return None
    return None


def parse_sensor(text: str) -> int:
    """A sensor_index cell.

    >>> parse_sensor(" 17")
    17
    >>> parse_sensor("1e3")
    Traceback (most recent call last):
    ...
    columns.csv_source.CsvRowError: sensor_index '1e3' is not an index (0 to 2**63 - 1)
    """
    value = as_int(text)
    if value is None or not 0 <= value <= MAX_SENSOR_INDEX:
        raise CsvRowError(f"sensor_index {text[:40]!r} is not an index (0 to 2**63 - 1)")
    return value


def parse_time(text: str) -> int:
    """A time cell: epoch seconds, or ISO 8601 in whole seconds (UTC when no offset is given).

    >>> parse_time("1775001600"), parse_time("2026-04-01T00:00:00Z"), parse_time("2026-04-01")
    (1775001600, 1775001600, 1775001600)
    >>> parse_time("2026-04-01T00:00:00.5")
    Traceback (most recent call last):
    ...
    columns.csv_source.CsvRowError: time '2026-04-01T00:00:00.5' is not a whole second
    """
    value = as_int(text)
    if value is None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            moment = None
        if moment is not None and moment.microsecond:
            raise CsvRowError(f"time {text[:40]!r} is not a whole second")
        if moment is not None:
            value = epoch_of(moment)
    if value is None or not EPOCH_RANGE[0] <= value <= EPOCH_RANGE[1]:
        reason = "is not a time (epoch seconds or ISO 8601, years 1–9999)"
        raise CsvRowError(f"time {text[:40]!r} {reason}")
    return value


def plausible_time(text: str, window: TimeWindow, bounds: tuple[int, int]) -> int:
    """A time cell (`parse_time`) within `bounds`, `window.bounds()` when the batch was read.

    >>> window = TimeWindow(0, 1775001600)
    >>> plausible_time("2026-04-01T00:02:00Z", window, window.bounds())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    columns.csv_source.CsvRowError: time 1775001720 (2026-04-01T00:02:00Z) is after the latest...
    """
    value = parse_time(text)
    if not bounds[0] <= value <= bounds[1]:
        raise CsvRowError(window.refusal("time", value, bounds))
    return value


def parse_number(name: str, text: str) -> float | None:
    """A field's cell: a finite float, or None when missing.

    >>> parse_number("humidity", " 31"), parse_number("humidity", "NA")
    (31.0, None)
    """
    if text.strip().lower() in MISSING_TEXT:
        return None
    value = None
    if text.isascii() and "_" not in text:  # float() also reads 1_000 and other scripts' digits
        try:
            value = float(text)
        except ValueError:
            value = None
    if value is None:
        raise CsvRowError(f"field {name!r} is {text[:40]!r}, not a number")
    if value - value:
        raise CsvRowError(f"field {name!r} is {text[:40]!r}, not a finite number")
    return value


def line_cells(line: bytes) -> list[str]:
    """The cells of one line (its newline stripped); `CsvRowError` when it is not UTF-8 text or
    not a CSV row."""
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise CsvRowError(f"not UTF-8: byte {exc.object[exc.start]:#04x} at {exc.start}") from None
    try:
        return split_cells(text)
    except RowError as exc:
        raise CsvRowError(str(exc)) from None


def line_sensor(header: CsvHeader, line: bytes) -> int | None:
    """The sensor a line is routed by: its sensor_index cell when the line is a row of the
    header's width and that cell an integer (in range or not), else None (shard 0's)."""
    try:
        cells = line_cells(line)
    except CsvRowError:
        return None
    return as_int(cells[header.sensor]) if len(cells) == header.width else None


def parse_line(
    header: CsvHeader,
    line: bytes,
    window: TimeWindow = DEFAULT_WINDOW,
    bounds: tuple[int, int] | None = None,
) -> tuple[int, int, list[float | None], dict]:
    """One line (no newline) as (sensor, time, values in field order, text); `CsvRowError`
    naming the first thing that does not fit. The rule every row is read by. The time must be
    within `bounds` (`window.bounds()` now, unless given)."""
    cells = line_cells(line)
    if len(cells) != header.width:
        raise CsvRowError(f"row has {len(cells)} cells but the header names {header.width}")
    sensor = parse_sensor(cells[header.sensor])
    time = plausible_time(cells[header.time], window, bounds or window.bounds())
    values = [parse_number(name, cells[pos]) for name, pos in header.numeric]
    text = {name: cells[pos] or None for name, pos in header.text}
    return sensor, time, values, text


def parse_lines(
    header: CsvHeader,
    lines: list[bytes],
    numbers: list[int],
    name: str,
    owner: Callable[[int | None], bool] | None = None,
    window: TimeWindow = DEFAULT_WINDOW,
) -> tuple[Columns, list[DeadLetter]]:
    """This shard's rows of `lines` (newlines stripped; line `numbers`, for origins) as one
    `Columns` in line order, and its dead letters: `parse_line`'s results, by columns (the
    times checked against `window` as it stands now)."""
    width = header.width
    bounds = window.bounds()
    joined = b"\n".join(lines)
    odd = set()
    if b'"' in joined or b"\r" in joined:
        odd = {i for i, line in enumerate(lines) if b'"' in line or b"\r" in line}
    commas = np.fromiter(map(bytes.count, lines, repeat(b",")), np.int64, len(lines))
    odd.update(np.flatnonzero(commas != width - 1).tolist())
    fast = [i for i in range(len(lines)) if i not in odd] if odd else range(len(lines))
    text = b"\n".join([lines[i] for i in fast]) if odd else joined
    try:
        decoded = text.decode()
    except UnicodeDecodeError:
        bad = {i for i in fast if not _utf8(lines[i])}
        odd |= bad
        fast = [i for i in fast if i not in bad]
        decoded = b"\n".join([lines[i] for i in fast]).decode()
    cells = decoded.replace("\n", ",").split(",") if fast else []
    columns = [cells[j::width] for j in range(width)]
    sensors = _ints(columns[header.sensor]) if fast else []
    if owner is not None:
        mine = list(map(owner, sensors))
        fast = list(compress(fast, mine))
        sensors = list(compress(sensors, mine))
        columns = [list(compress(column, mine)) for column in columns]
        odd = {i for i in odd if owner(line_sensor(header, lines[i]))}
    rows = np.array(fast, np.int64)
    bad = np.zeros(len(rows), bool)
    sensor_array = _checked_ints(sensors, columns[header.sensor], bad, 0, MAX_SENSOR_INDEX)
    times = _times(columns[header.time], bad, bounds)
    values = np.empty((len(rows), len(header.numeric)))
    for j, (_, pos) in enumerate(header.numeric):
        values[:, j] = _numbers(columns[pos], bad)
    text_cells = [[c or None for c in columns[pos]] for _, pos in header.text]
    slow = sorted(odd | set(rows[bad].tolist()))
    keep = ~bad
    parts = [(rows[keep], sensor_array[keep], times[keep], values[keep])]
    texts = [
        dict(zip([n for n, _ in header.text], row, strict=True))
        for row in zip(*text_cells, strict=True)
    ]
    texts = list(compress(texts, keep)) if header.text else []
    dead, more = [], []
    for i in slow:
        try:
            more.append((i, parse_line(header, lines[i], window, bounds)))
        except CsvRowError as exc:
            raw = lines[i]
            dead.append(DeadLetter(str(exc), raw, f"{name}:{numbers[i]}"))
    if more:
        parts.append(
            (
                np.array([i for i, _ in more], np.int64),
                np.array([r[0] for _, r in more], np.int64),
                np.array([r[1] for _, r in more], np.int64),
                np.array(
                    [[np.nan if v is None else v for v in r[2]] for _, r in more], np.float64
                ).reshape(len(more), len(header.numeric)),
            )
        )
        texts += [r[3] for _, r in more]
    at, sensor_out, time_out, value_out = (np.concatenate(p) for p in zip(*parts, strict=True))
    order = np.argsort(at, kind="stable") if more else slice(None)
    text_out = [texts[k] for k in np.arange(len(at))[order]] if header.text else None
    origin = f"{name}:{numbers[0]}-{numbers[-1]}" if numbers else name
    out = Columns(
        sensor_out[order], time_out[order], header.fields, value_out[order], text_out, origin
    )
    return out, dead


def _utf8(line: bytes) -> bool:
    try:
        line.decode()
    except UnicodeDecodeError:
        return False
    return True


def _ints(cells: list[str]) -> list[int | None]:
    """Each cell as `as_int` reads it: int() at C speed when the cells are ASCII without `_`."""
    joined = ",".join(cells)
    if joined.isascii() and "_" not in joined:
        try:
            return list(map(int, cells))
        except ValueError:
            pass
    return [as_int(c) for c in cells]


def _checked_ints(
    ints: list[int | None], cells: list[str], bad: np.ndarray, low: int, high: int
) -> np.ndarray:
    """`ints` as int64, flagging in `bad` the rows whose value is None or not in low..high."""
    try:
        out = np.array(ints, np.int64) if ints else np.zeros(0, np.int64)
    except (OverflowError, TypeError):  # beyond 64 bits, or None: cell by cell
        ok = [v is not None and low <= v <= high for v in ints]
        out = np.array([v if k else 0 for v, k in zip(ints, ok, strict=True)], np.int64)
        bad |= ~np.array(ok, bool)
        return out
    bad |= (out < low) | (out > high)
    return out


def _times(cells: list[str], bad: np.ndarray, bounds: tuple[int, int]) -> np.ndarray:
    """The time cells as epoch seconds, flagging in `bad` those not a time within `bounds`."""
    ints = _ints(cells)
    if None not in ints:
        return _checked_ints(ints, cells, bad, *bounds)
    out = np.zeros(len(cells), np.int64)
    for i, cell in enumerate(cells):  # ISO 8601 (or not a time): cell by cell
        try:
            out[i] = parse_time(cell)
        except CsvRowError:
            bad[i] = True
    bad |= (out < bounds[0]) | (out > bounds[1])
    return out


def _numbers(cells: list[str], bad: np.ndarray) -> np.ndarray:
    """A field's cells as floats (NaN: missing), flagging the rows `parse_number` refuses."""
    joined = ",".join(cells)
    out = None
    if joined.isascii() and "_" not in joined:
        numbers = [cell or "nan" for cell in cells] if "" in cells else cells  # empty: missing
        with suppress(ValueError):  # an NA cell, or not a number: cell by cell
            out = np.fromiter(map(float, numbers), np.float64, len(numbers))
    if out is None:
        out = np.empty(len(cells))
        for i, cell in enumerate(cells):
            try:
                value = parse_number("", cell)
            except CsvRowError:
                bad[i], value = True, None
            out[i] = np.nan if value is None else value
        return out
    odd = np.flatnonzero(~np.isfinite(out))
    if len(odd) != cells.count(""):  # not only empty cells: nan is missing, +nan or inf is not
        for i in odd.tolist():
            if cells[i].strip().lower() not in MISSING_TEXT:
                bad[i] = True
    return out


class _CsvPartition(StatefulSourcePartition[ColumnItem, Position]):
    def __init__(
        self,
        path: Path,
        header: CsvHeader,
        shard: int,
        shards: int,
        batch_size: int,
        resume: Position,
        progress: ProgressHook | None,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        self._file = path.open("rb")
        self._window = window
        self._name = path.name
        self._header = header
        self._part = f"shard-{shard}-of-{shards}"
        self._key = shard_key(shard, shards)
        self._batch_size = batch_size
        self._owns = sensor_owner(shard, shards)
        self._owner = None if shards == 1 else self._owns
        self._position = resume
        self._progress = progress
        self._file.seek(resume.offset)

    def next_batch(self) -> list[ColumnItem]:
        offset, start, _ = self._position
        readline, limit = self._file.readline, MAX_LINE_BYTES
        lines, numbers, batch = [], [], []
        for n in range(start, start + self._batch_size):
            line = readline(limit)
            if not line:
                break
            offset += len(line)
            if len(line) == limit and not line.endswith(b"\n"):
                length = len(line) + skip_rest(self._file, limit)
                offset += length - len(line)
                if self._owns(None):
                    reason = f"line of {length} bytes, longer than {limit}"
                    raw = Prefix(line[:RAW_LIMIT], length)
                    batch.append(DeadLetter(reason, raw, f"{self._name}:{n}"))
            elif line.strip():
                lines.append(line.rstrip(b"\r\n"))
                numbers.append(n)
        else:
            n += 1  # every line of the batch was read
        if n == start:
            raise StopIteration()
        self._position = Position(offset, n, 0)
        if lines:
            columns, dead = parse_lines(
                self._header, lines, numbers, self._name, self._owner, self._window
            )
            if len(columns):
                batch.insert(0, (self._key, columns))
            batch.extend(dead)
        if self._progress is not None:
            rows = sum(1 if isinstance(x, DeadLetter) else len(x[1]) for x in batch)
            self._progress(self._part, rows, offset)
        return batch

    def snapshot(self) -> Position:
        return self._position

    def close(self) -> None:
        self._file.close()


class CsvColumnSource(FixedPartitionedSource[ColumnItem, Position]):
    """Column batches and dead letters from a CSV of readings, in `shards` partitions.

    The header is read (and checked: `ConfigError`) when the source is built. A row whose
    time is outside `window` is a dead letter.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        shards: int = DEFAULT_SHARDS,
        batch_size: int = 1000,
        progress: ProgressHook | None = None,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        if shards < 1 or batch_size < 1:
            raise ConfigError("shards and batch_size must be at least 1")
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        self.header = read_header(self.path)
        self.shards = shards
        self.batch_size = batch_size
        self.progress = progress
        self.window = window

    def registry(self, area_km: float, radius_km: float) -> Registry:
        """The file's sensors by area, for the area stage: each sensor's first reading that
        has a latitude and a longitude (as `preparation.registry.file_registry` reads polls)."""
        first: dict[int, tuple[int, float, float]] = {}
        fields = self.header.fields
        if not {"latitude", "longitude"} <= set(fields):
            return {}
        lat, lon = fields.index("latitude"), fields.index("longitude")
        start = Position(self.header.length, 2, 0)
        part = _CsvPartition(self.path, self.header, 0, 1, 10_000, start, None, self.window)
        try:
            while True:
                for item in part.next_batch():
                    if isinstance(item, DeadLetter):
                        continue
                    c = item[1]
                    a, b = c.values[:, lat], c.values[:, lon]
                    placed = np.flatnonzero((np.abs(a) <= 90) & (np.abs(b) <= 180))
                    sensors, at = np.unique(c.sensors[placed], return_index=True)
                    for sensor, i in zip(sensors.tolist(), placed[at].tolist(), strict=True):
                        if sensor not in first:
                            first[sensor] = (int(c.times[i]), float(a[i]), float(b[i]))
        except StopIteration:
            pass
        finally:
            part.close()
        return registry_of(first, area_km, radius_km)

    def list_parts(self) -> list[str]:
        digits = len(str(self.shards - 1))
        return [f"shard-{i:0{digits}d}-of-{self.shards}" for i in range(self.shards)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any | None) -> _CsvPartition:
        shard = int(for_part.split("-")[1])
        start = Position(self.header.length, 2, 0)
        resume = Position(*resume_state) if resume_state is not None else start
        return _CsvPartition(
            self.path,
            self.header,
            shard,
            self.shards,
            self.batch_size,
            resume,
            self.progress,
            self.window,
        )
