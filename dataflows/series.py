"""Score any time series from a CSV file: impute, score each row as it arrives, write a CSV.

    python -m bytewax.run "dataflows.series:build_flow('in.csv', 'out.csv')"
    python -m bytewax.run "dataflows.series:build_flow('in.csv', 'out.csv', detector='zscore')"

Input: a header with `timestamp` and `value` (and optionally `key`; other columns are ignored),
then one row per reading; an empty `value` (or nan, NA, null) is missing. Each key (one series
when there is no `key` column) has its own imputer (`WindowImputer`: mean of the last `window`
observed values) and detector (`detectors.catalog`, the evaluated default unless `detector=`
names another). A row is scored before the detector learns it, so its score depends only on the
rows before and at it.

A row that cannot be read — bytes that are not UTF-8, more or fewer cells than the header, bad
quoting, a timestamp that is neither epoch seconds nor ISO 8601, a value that is not a number or
not finite (`1e999`), a line longer than `MAX_LINE_BYTES` — is a dead letter
(`{"reason", "origin", "raw"}`, as in the air-quality flow) and never reaches a key's state: the
rows around it are scored as if it were absent. Blank lines are not rows. Rows in = rows scored
+ dead letters; the totals at the end of the run say so. Only a configuration error (no such
file, no `timestamp` or `value` column, a bad option) stops a run, as one line, when the flow is
built.

Output: `timestamp,value,imputed,anomaly_score,is_anomaly` (with `key` first when the input has
one), one row per scored row, in input order per key. `value` is the input text, `imputed` the
value after imputation, `anomaly_score` in [0, 1], empty while the key's detector is warming up
or when nothing could be imputed yet, and `is_anomaly` true when the score exceeds the
detector's alarm threshold. Keys are spread over `shards` source partitions by a hash of the
key; one worker writes the file. The source resumes from its byte offset and the CSV from its
length after a crash (`-r`, as in the air-quality flow).
"""

from __future__ import annotations

import csv
import io
import math
import os
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import FixedPartitionedSink, Sink, StatefulSinkPartition

from config import install_excepthook
from core.dead_letters import RAW_LIMIT, Prefix, dead_letter_record
from core.errors import ConfigError
from core.readings import DeadLetter
from dataflows.steps import add_counts, totals_line
from detectors.catalog import DEFAULT_DETECTOR, alarm_threshold, make_detector
from detectors.holdoff import TIME
from imputers.window import WindowImputer
from sinks.jsonlines import JsonLinesSink
from sinks.log import LogSink
from sources.csv_cells import MISSING_TEXT, RowError, split_cells
from sources.documents import skip_rest

install_excepthook()  # under bytewax.run, a ConfigError prints as its one line

FEATURE = "value"
#: The longest line read whole; a longer one is a dead letter with its first bytes.
MAX_LINE_BYTES = 1 << 20
#: A row in flight: (line number, timestamp, value text, value or None).
Row = tuple[int, str, str, float | None]
Item = tuple[str, Row] | DeadLetter


class LineTooLong(RowError):
    """A line longer than `MAX_LINE_BYTES`: only its start was read."""

    def __init__(self, length: int):
        super().__init__(f"line of {length} bytes")
        self.length = length


def parse_value(text: str) -> float | None:
    """A value cell: a finite float, or None when empty / nan / NA / null.

    >>> parse_value(" 4.5"), parse_value(""), parse_value("NaN")
    (4.5, None, None)
    >>> parse_value("1e999")
    Traceback (most recent call last):
    ...
    sources.csv_cells.RowError: value '1e999' is not a finite number
    >>> parse_value("1_000")  # float() reads it as 1000, as it reads non-ASCII digits as numbers
    Traceback (most recent call last):
    ...
    sources.csv_cells.RowError: value '1_000' is not a number
    """
    text = text.strip()
    if text.lower() in MISSING_TEXT:
        return None
    try:
        value = _number(text)
    except ValueError:
        raise RowError(f"value {text[:40]!r} is not a number") from None
    if value - value:  # ±inf (NaN was missing above)
        raise RowError(f"value {text[:40]!r} is not a finite number")
    return value


def _number(text: str) -> float:
    """`float(text)` for a number as a CSV writes one: ASCII, without `_` separators (float()
    also reads `1_000` and digits of any script, `١٢` or `１`); a `ValueError` otherwise."""
    if "_" in text or not text.isascii():
        raise ValueError(text)
    return float(text)


def seconds_of(text: str) -> float:
    """A checked timestamp (see `check_timestamp`) in seconds, for hold-offs in seconds.

    >>> seconds_of("1396310400"), seconds_of("2014-04-01 00:05:00") - seconds_of("2014-04-01")
    (1396310400.0, 300.0)
    """
    text = text.strip()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return _number(text)


def check_timestamp(text: str) -> None:
    """Raise `RowError` unless `text` is epoch seconds or an ISO 8601 date or date-time.

    >>> check_timestamp("1396310400"), check_timestamp("2014-04-01 00:05:00")
    (None, None)
    >>> check_timestamp("yesterday")
    Traceback (most recent call last):
    ...
    sources.csv_cells.RowError: timestamp 'yesterday' is not a time (epoch seconds or ISO 8601)
    """
    text = text.strip()
    try:
        datetime.fromisoformat(text)
        return
    except ValueError:
        pass
    try:
        if math.isfinite(_number(text)):
            return
    except ValueError:
        pass
    raise RowError(f"timestamp {text[:40]!r} is not a time (epoch seconds or ISO 8601)")


def key_shard(key: str, shards: int) -> int:
    """The source partition that reads a key (a stable hash, the same in every process)."""
    return zlib.crc32(key.encode()) % shards


class Header(NamedTuple):
    """The CSV's columns: how many, and where `timestamp`, `value` and `key` (or None) are."""

    width: int
    timestamp: int
    value: int
    key: int | None


def read_header(path: str) -> Header:
    """The header of the CSV at `path`; a `ConfigError` (one line) when the flow cannot run."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(MAX_LINE_BYTES)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the header is not UTF-8 text ({exc.reason})") from None
    header = [name.strip() for name in next(csv.reader([text.rstrip("\r\n")]), [])]
    for needed in ("timestamp", "value"):
        if needed not in header:
            raise ConfigError(f"{path}: the header has no {needed!r} column: {header}")
    key = header.index("key") if "key" in header else None
    return Header(len(header), header.index("timestamp"), header.index("value"), key)


class Position(NamedTuple):
    """Where a partition goes on: the next line's byte offset and number."""

    offset: int
    line: int


class _RowsPartition(StatefulSourcePartition[Item, Position]):
    def __init__(
        self, path: str, header: Header, shard: int, shards: int, batch_size: int, at: Position
    ):
        self._file = open(path, "rb")  # noqa: SIM115 - open until close()
        self._file.seek(at.offset)
        self._name = Path(path).name
        self._header = header
        self._shard, self._shards = shard, shards
        self._batch_size = batch_size
        self._position = at

    def next_batch(self) -> list[Item]:
        # hot path: one loop, locals only; a bad row leaves it through RowError (or a decode
        # error) to `_dead_letter`
        readline, size, shard, shards = (
            self._file.readline,
            self._batch_size,
            self._shard,
            self._shards,
        )
        width, t_pos, v_pos, k_pos = self._header
        offset, number = self._position
        batch: list[Item] = []
        while len(batch) < size:
            line = readline(MAX_LINE_BYTES)
            if not line:
                break
            n, number, offset = number, number + 1, offset + len(line)
            key = None
            try:
                if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                    skipped = skip_rest(self._file, MAX_LINE_BYTES)
                    offset += skipped
                    if n > 1:  # (a header that long was read as far as `read_header` reads)
                        raise LineTooLong(len(line) + skipped)
                if n == 1 or not line.strip():
                    continue  # the header; blank lines are not rows
                text = line.decode().rstrip("\r\n")
                cells = split_cells(text)
                if len(cells) != width:
                    raise RowError(f"row has {len(cells)} cells but the header names {width}")
                key = cells[k_pos] if k_pos is not None else ""
                if shards > 1 and key_shard(key, shards) != shard:
                    continue
                timestamp, value_text = cells[t_pos], cells[v_pos]
                if not (timestamp.isascii() and timestamp.isdigit()):
                    check_timestamp(timestamp)
                try:
                    value = float(value_text)
                except ValueError:
                    value = parse_value(value_text)
                else:  # nan (missing), ±inf, 1_000 or non-ASCII digits (dead letters)
                    if value - value or "_" in value_text or not value_text.isascii():
                        value = parse_value(value_text)
                batch.append((key, (n, timestamp, value_text, value)))
            except (RowError, UnicodeDecodeError) as exc:
                if key is not None or shard == 0:  # the key's partition, or shard 0 without one
                    batch.append(self._dead_letter(line, n, exc))
        self._position = Position(offset, number)
        if not batch and not line:
            raise StopIteration()
        return batch

    def _dead_letter(self, line: bytes, number: int, error: Exception) -> DeadLetter:
        raw: bytes | Prefix = line.rstrip(b"\r\n")
        if isinstance(error, LineTooLong):
            raw = Prefix(line[:RAW_LIMIT], error.length)
            reason = f"line of {error.length} bytes, longer than {MAX_LINE_BYTES}"
        elif isinstance(error, UnicodeDecodeError):
            reason = f"not UTF-8: byte {error.object[error.start]:#04x} at {error.start}"
        else:
            reason = str(error)
        return DeadLetter(reason, raw, f"{self._name}:{number}")

    def snapshot(self) -> Position:
        return self._position

    def close(self) -> None:
        self._file.close()


class CsvSeriesSource(FixedPartitionedSource[Item, Position]):
    """Rows of a `timestamp,value[,key]` CSV as `(key, row)`, and its bad rows as dead letters.

    Each of `shards` partitions reads the file and keeps its own keys (and shard 0 the rows
    whose key cannot be read), so every row is one item in the whole flow; each resumes from its
    byte offset.
    """

    def __init__(self, path: str | Path, batch_size: int = 1000, shards: int = 1):
        if batch_size < 1 or shards < 1:
            raise ConfigError("batch_size and shards must be at least 1")
        self.path = str(path)
        self.header = read_header(self.path)
        self.batch_size = batch_size
        self.shards = shards

    def list_parts(self) -> list[str]:
        return [f"shard-{i}-of-{self.shards}" for i in range(self.shards)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: Position | None
    ) -> _RowsPartition:
        shard = int(for_part.split("-")[1])
        at = Position(*resume_state) if resume_state is not None else Position(0, 1)
        return _RowsPartition(self.path, self.header, shard, self.shards, self.batch_size, at)


class ScoreRow:
    """`stateful_map` mapper: impute a row's value, score it, then let the detector learn it."""

    def __init__(self, detector: str, window: int, strategy: str, options: dict[str, Any]):
        self.detector = detector
        self.window = window
        self.strategy = strategy
        self.options = options
        self.threshold = alarm_threshold(self.new_state()[1])  # fails early on a bad config

    def new_state(self) -> tuple[WindowImputer, Any]:
        imputer = WindowImputer([FEATURE], self.window, self.strategy)
        return imputer, make_detector(self.detector, FEATURE, **self.options)

    def __call__(self, state, row: Row) -> tuple[Any, tuple[str, ...]]:
        if state is None:
            state = self.new_state()
        imputer, detector = state
        _number, timestamp, text, value = row
        filled, _imputed, _missing = imputer.impute_one({FEATURE: value})
        score, _status = detector.score_then_learn({**filled, TIME: seconds_of(timestamp)})
        imputed = filled[FEATURE]
        return state, (
            timestamp,
            text,
            "" if imputed is None else repr(float(imputed)),
            "" if score is None else repr(float(score)),
            "true" if score is not None and score > self.threshold else "false",
        )


class _CsvPartition(StatefulSinkPartition[tuple[str, tuple[str, ...]], int]):
    """Receives `(key, cells)` values (Bytewax hands a partition the values of its items)."""

    def __init__(self, path: str, header: list[str], with_key: bool, resume: int | None):
        self._with_key = with_key
        if resume is None:
            self._fh = open(path, "w", newline="")  # noqa: SIM115 - open until close()
            csv.writer(self._fh, lineterminator="\n").writerow(header)  # as the rows
        else:
            self._fh = open(path, "r+", newline="")  # noqa: SIM115 - open until close()
            self._fh.truncate(resume)
            self._fh.seek(resume)

    def write_batch(self, items: list[tuple[str, tuple[str, ...]]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self._with_key:
            writer.writerows((key, *cells) for key, cells in items)
        else:
            writer.writerows(cells for _key, cells in items)
        self._fh.write(buffer.getvalue())

    def snapshot(self) -> int:
        self._fh.flush()
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


class CsvSink(FixedPartitionedSink[tuple[str, tuple[str, ...]], int]):
    """Write items `(key, (key, cells))` to one CSV file, from one worker; resumes at its last
    snapshot."""

    COLUMNS = ["timestamp", "value", "imputed", "anomaly_score", "is_anomaly"]

    def __init__(self, path: str | Path, with_key: bool = False):
        self.path = os.fspath(path)
        self.with_key = with_key

    def list_parts(self) -> list[str]:
        return ["file"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _CsvPartition:
        header = (["key"] if self.with_key else []) + self.COLUMNS
        return _CsvPartition(self.path, header, self.with_key, resume_state)


def build_flow(
    input_path: str | Path,
    output_path: str | Path,
    *,
    detector: str = DEFAULT_DETECTOR,
    window: int = 10,
    strategy: str = "mean",
    batch_size: int = 1000,
    shards: int = 1,
    dead_letters: None | str | Sink = None,
    totals: None | Sink = None,
    **detector_options: Any,
) -> Dataflow:
    """Impute and score the CSV at `input_path`, writing the scored CSV to `output_path`.

    `detector`: one of `detectors.catalog.DETECTORS`; `detector_options` go to its constructor.
    `window`, `strategy`: the imputer's (mean, median or last of the last `window` observed).
    `dead_letters`: rows that cannot be scored, as JSON lines to a file path (appended), to
    stderr (None), or to a Bytewax sink of the record dicts. `totals`: a sink for the run's
    totals dict (default: one line in the log). `shards`: source partitions (keys by hash).
    """
    source = CsvSeriesSource(input_path, batch_size, shards)  # fails early on a bad header
    try:
        step = ScoreRow(detector, window, strategy, detector_options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"detector {detector!r}: {exc}") from None
    flow = Dataflow("series")
    items = op.input("rows", flow, source)
    # batch steps (one Python call per batch, not per row) split, key and count the streams
    rows = op.flat_map_batch("rows_only", items, _rows)
    dead = op.flat_map_batch("dead_only", items, _dead_letters)
    scored = op.stateful_map("score", rows, step)
    with_key = source.header.key is not None
    keyed = op.flat_map_batch("keep_key", scored, lambda batch: [(kv[0], kv) for kv in batch])
    op.output("csv", keyed, CsvSink(output_path, with_key))
    if dead_letters is None or isinstance(dead_letters, str):
        dead_letters = JsonLinesSink(dead_letters, stream="stderr")
    records = op.map("dead_letter_json", dead, _dead_letter_record)
    op.output("dead_letters_out", records, dead_letters)
    counts = op.merge(  # rows_in counted as read, so rows_in = scored + dead letters is a check
        "counts",
        op.flat_map_batch("rows_in_counts", items, lambda batch: [{"rows_in": len(batch)}]),
        op.flat_map_batch("row_counts", scored, _row_counts),
        op.flat_map_batch("dead_counts", dead, lambda batch: [{"dead_letters": len(batch)}]),
    )
    summary = op.fold_final(
        "totals", op.key_on("one_key", counts, lambda _c: "totals"), dict, add_counts
    )
    summary = op.map("all_counts", op.key_rm("unkey_totals", summary), _all_counts)
    if totals is None:
        lines = op.map("totals_line", summary, totals_line)
        op.output("totals_log", lines, LogSink("air_quality.series"))
    else:
        op.output("totals_out", summary, totals)
    return flow


def _rows(batch: list[Item]) -> list[tuple[str, Row]]:
    return [item for item in batch if type(item) is not DeadLetter]


def _dead_letters(batch: list[Item]) -> list[DeadLetter]:
    return [item for item in batch if type(item) is DeadLetter]


def _dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    return dead_letter_record(letter.reason, letter.origin, letter.raw)


def _row_counts(batch: list[tuple[str, tuple[str, ...]]]) -> list[dict[str, int]]:
    """One batch's counts: rows scored, anomalies among them."""
    anomalies = sum(1 for _key, cells in batch if cells[-1] == "true")
    return [{"scored": len(batch), "anomalies": anomalies}]


def _all_counts(counts: dict[str, int]) -> dict[str, int]:
    """The totals, with every count present (0 for what never happened)."""
    return {"scored": 0, "anomalies": 0, "dead_letters": 0, "rows_in": 0, **counts}
