"""Score any time series from a CSV file: impute, score each row as it arrives, write a CSV.

    python -m bytewax.run "dataflows.series:build_flow('in.csv', 'out.csv')"
    python -m bytewax.run "dataflows.series:build_flow('in.csv', 'out.csv', detector='zscore')"

Input: a header with `timestamp` and `value` (and optionally `key`; other columns are ignored),
then one row per reading; an empty `value` (or nan, NA, null) is missing. Each key (one series
when there is no `key` column) has its own imputer (`WindowImputer`: mean of the last `window`
observed values) and detector (`detectors.catalog`, the evaluated default unless `detector=`
names another). A row is scored before the detector learns it, so its score depends only on the
rows before and at it.

Output: `timestamp,value,imputed,anomaly_score,is_anomaly` (with `key` first when the input has
one), one row per input row, in input order per key. `value` is the input text, `imputed` the
value after imputation, `anomaly_score` in [0, 1], empty while the key's detector is warming up
or when nothing could be imputed yet, and `is_anomaly` true when the score exceeds the
detector's alarm threshold. Keys are spread over workers by a hash of the key; one worker writes
the file.
"""

from __future__ import annotations

import csv
import io
import os
import zlib
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from detectors.catalog import DEFAULT_DETECTOR, alarm_threshold, make_detector
from imputers.window import WindowImputer

MISSING_TEXT = frozenset({"", "nan", "na", "null", "none"})
FEATURE = "value"
#: A row in flight: (row number, timestamp, value text, value or None).
Row = tuple[int, str, str, float | None]


def parse_value(text: str, where: str) -> float | None:
    """A value cell: a float, or None when empty / nan / NA / null.

    >>> parse_value(" 4.5", "x"), parse_value("", "x"), parse_value("NaN", "x")
    (4.5, None, None)
    """
    text = text.strip()
    if text.lower() in MISSING_TEXT:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: value {text!r} is not a number") from None
    return None if value != value else value


def key_worker(key: str, worker_count: int) -> int:
    """The worker that reads a key (a stable hash, the same in every process)."""
    return zlib.crc32(key.encode()) % worker_count


def columns(path: str) -> tuple[int, int, int | None]:
    """Positions of `timestamp`, `value` and `key` (None when absent) in the CSV's header."""
    with open(path, newline="") as fh:
        header = [name.strip() for name in next(csv.reader(fh), [])]
    for needed in ("timestamp", "value"):
        if needed not in header:
            raise ValueError(f"{path}: the header has no {needed!r} column: {header}")
    key = header.index("key") if "key" in header else None
    return header.index("timestamp"), header.index("value"), key


def read_rows(path: str, worker_index: int = 0, worker_count: int = 1) -> Iterator[tuple[str, Row]]:
    """`(key, row)` for this worker's keys, in file order."""
    t_pos, v_pos, k_pos = columns(path)
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for number, cells in enumerate(reader, start=2):
            if not cells:
                continue
            key = cells[k_pos] if k_pos is not None else ""
            if worker_count > 1 and key_worker(key, worker_count) != worker_index:
                continue
            text = cells[v_pos] if v_pos < len(cells) else ""
            value = parse_value(text, f"{path}:{number}")
            yield key, (number, cells[t_pos], text, value)


class _RowsPartition(StatelessSourcePartition[tuple[str, Row]]):
    def __init__(self, rows: Iterator[tuple[str, Row]], batch_size: int):
        self._rows = rows
        self._batch_size = batch_size

    def next_batch(self) -> list[tuple[str, Row]]:
        batch = list(islice(self._rows, self._batch_size))
        if not batch:
            raise StopIteration()
        return batch


class CsvSeriesSource(DynamicSource[tuple[str, Row]]):
    """Rows of a `timestamp,value[,key]` CSV as `(key, row)`; each worker reads its own keys."""

    def __init__(self, path: str | Path, batch_size: int = 1000):
        self.path = str(path)
        self.batch_size = batch_size

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _RowsPartition:
        return _RowsPartition(read_rows(self.path, worker_index, worker_count), self.batch_size)


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
        score, _status = detector.score_then_learn(filled)
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
            csv.writer(self._fh).writerow(header)
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
    **detector_options: Any,
) -> Dataflow:
    """Impute and score the CSV at `input_path`, writing the scored CSV to `output_path`.

    `detector`: one of `detectors.catalog.DETECTORS`; `detector_options` go to its constructor.
    `window`, `strategy`: the imputer's (mean, median or last of the last `window` observed).
    """
    input_path = str(input_path)
    with_key = columns(input_path)[2] is not None  # fails early on a bad header
    step = ScoreRow(detector, window, strategy, detector_options)
    flow = Dataflow("series")
    rows = op.input("rows", flow, CsvSeriesSource(input_path, batch_size))
    scored = op.stateful_map("score", rows, step)
    keep_key = op.map("keep_key", scored, lambda kv: (kv[0], kv))
    op.output("csv", keep_key, CsvSink(output_path, with_key))
    return flow
