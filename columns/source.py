"""`ColumnFileSource`: a payload file read as column batches, in fixed sensor shards, resumable.

The twin of `sources.shards.ShardedFileSource`: the same partitions (`shard-i-of-n`), the same
rows in each (`sources.purpleair.sensor_owner`), the same resume `Position` after each batch, the
same JSON lines or single pretty-printed document, the same dead letter for a line longer than
`sources.shards.MAX_LINE_BYTES`. What it emits differs: per poll line, one
`(shard_key(i, n), Columns)` item holding all of shard i's readings of that line
(`columns.parse`), then that line's dead letters. Batches close at the same lines as
`ShardedFileSource`'s (once they hold `batch_size` rows, readings and dead letters together), so
the snapshots are the same `Position`s too.

The key is what the shard's state is kept under downstream: a str that Bytewax routes to the
worker this partition is read on (when the worker count divides the shard count), so a batch
never crosses workers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from columns.batch import Columns
from columns.parse import ParsedPayload, empty_columns, parse_columns
from core.dead_letters import RAW_LIMIT, Prefix
from core.readings import DeadLetter
from preparation.registry import Registry, file_registry
from sources import shards as sharded
from sources.documents import SourceError, skip_rest
from sources.payload import DEFAULT_WINDOW, PayloadError, decode_line
from sources.purpleair import sensor_owner
from sources.routing import key_worker
from sources.shards import DEFAULT_SHARDS, Position, is_single_document
from sources.times import TimeWindow

#: What a partition emits: a shard's rows of one poll under its key, or a dead letter.
ColumnItem = tuple[str, Columns] | DeadLetter
#: `progress(partition, rows, offset)`, called after each batch: rows in it, bytes read so far.
ProgressHook = Callable[[str, int, int], None]


def shard_key(shard: int, shards: int) -> str:
    """The state key of shard `shard` of `shards`: `"shard-i-of-n"`, or that with the first
    `~k` suffix that makes Bytewax route it to worker `shard % w` for every `w` dividing
    `shards` (its hash is `shard` modulo `shards`), the worker that reads that partition.

    >>> shard_key(0, 2), shard_key(1, 2), shard_key(0, 1)
    ('shard-0-of-2', 'shard-1-of-2', 'shard-0-of-1')
    >>> from sources.routing import key_worker
    >>> [key_worker(shard_key(i, 4), 4) for i in range(4)]
    [0, 1, 2, 3]
    """
    key, salt = f"shard-{shard}-of-{shards}", 0
    while key_worker(key, shards) != shard:
        salt += 1
        key = f"shard-{shard}-of-{shards}~{salt}"
    return key


def slice_columns(columns: Columns, start: int, stop: int) -> Columns:
    """Rows `start:stop` of `columns` (views of its arrays)."""
    text = None if columns.text is None else columns.text[start:stop]
    return Columns(
        columns.sensors[start:stop],
        columns.times[start:stop],
        columns.fields,
        columns.values[start:stop],
        text,
        columns.origin,
    )


class DecodedLines:
    """The decoded documents of a file, shared by the partitions that read it in one process:
    with several shards on one worker (or on worker threads of one process) a line is decoded
    once, not once per shard. Lines not yet taken by every partition wait, up to `limit` bytes
    of them (the oldest go first); a partition that falls further behind decodes for itself.
    Only speed depends on it: decoding is deterministic, and nobody changes what it returns."""

    def __init__(self, limit: int = 8 << 20):
        self.limit = limit
        self.readers = 0  # partitions reading the file in this process
        self._lock = threading.Lock()
        self._lines: OrderedDict[int, list[Any]] = (
            OrderedDict()
        )  # offset -> [decoded, takers, size]
        self._bytes = 0

    def decode(self, offset: int, document: bytes) -> Any:
        """`decode_line(document)` of the line at `offset` (`PayloadError` when not JSON)."""
        if self.readers < 2:
            return decode_line(document)
        with self._lock:
            entry = self._lines.get(offset)
            if entry is not None:
                entry[1] += 1
                if entry[1] >= self.readers:
                    del self._lines[offset]
                    self._bytes -= entry[2]
        if entry is None:
            try:
                entry = [decode_line(document), 1, len(document)]
            except PayloadError as exc:
                entry = [exc, 1, len(document)]
            with self._lock:
                self._lines[offset] = entry
                self._bytes += entry[2]
                while self._bytes > self.limit and len(self._lines) > 1:
                    self._bytes -= self._lines.popitem(last=False)[1][2]
        if isinstance(entry[0], PayloadError):
            raise PayloadError(*entry[0].args)
        return entry[0]


class _ColumnPartition(StatefulSourcePartition[ColumnItem, Position]):
    def __init__(
        self,
        path: Path,
        shard: int,
        shards: int,
        batch_size: int,
        single_document: bool,
        resume: Position,
        progress: ProgressHook | None,
        lines: DecodedLines,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        self._file = path.open("rb")
        self._window = window
        self._name = path.name
        self._lines = lines
        self._part = f"shard-{shard}-of-{shards}"
        self._key = shard_key(shard, shards)
        self._batch_size = batch_size
        self._position = resume
        self._single = single_document
        self._progress = progress
        self._file.seek(resume.offset)
        self._owns = sensor_owner(shard, shards)
        self._owner = None if shards == 1 else self._owns  # one shard: every row, no filter
        self._whole: tuple[ParsedPayload, np.ndarray] | None = None

    def _parse(
        self, origin: str, document: bytes, offset: int
    ) -> ParsedPayload | DeadLetter | None:
        try:
            payload = self._lines.decode(offset, document)
        except PayloadError as exc:
            if not self._owns(None):
                return None
            return DeadLetter(str(exc), document.rstrip(b"\r\n"), origin)
        return parse_columns(payload, origin=origin, owner=self._owner, window=self._window)

    def _add(self, batch: list[ColumnItem], parsed: ParsedPayload | DeadLetter | None) -> int:
        if parsed is None:
            return 0
        if isinstance(parsed, DeadLetter):
            batch.append(parsed)
            return 1
        if len(parsed.columns):
            batch.append((self._key, parsed.columns))
        batch.extend(parsed.dead)
        return len(parsed.columns) + len(parsed.dead)

    def next_batch(self) -> list[ColumnItem]:
        batch = self._next_rows() if self._single else self._next_lines()
        if self._progress is not None:
            rows = sum(1 if isinstance(x, DeadLetter) else len(x[1]) for x in batch)
            self._progress(self._part, rows, self._file.tell())
        return batch

    def _next_lines(self) -> list[ColumnItem]:
        batch: list[ColumnItem] = []
        rows = 0
        while rows < self._batch_size:
            limit = sharded.MAX_LINE_BYTES  # one limit for both file sources
            line = self._file.readline(limit)
            if not line:
                if batch:
                    return batch
                raise StopIteration()
            offset, number, _ = self._position
            length = len(line)
            if length == limit and not line.endswith(b"\n"):
                length += skip_rest(self._file, limit)
                if self._owns(None):
                    reason = f"line of {length} bytes, longer than {limit}"
                    raw = Prefix(line[:RAW_LIMIT], length)
                    rows += self._add(batch, DeadLetter(reason, raw, f"{self._name}:{number}"))
                line = b""
            self._position = Position(offset + length, number + 1, 0)
            if line.strip():
                parsed = self._parse(f"{self._name}:{number}", line, offset)
                rows += self._add(batch, parsed)
        return batch

    def _next_rows(self) -> list[ColumnItem]:
        """The whole file is one payload: its items in row order, `batch_size` at a time."""
        if self._whole is None:
            self._file.seek(0)
            parsed = self._parse(self._name, self._file.read(), 0)
            if not isinstance(parsed, ParsedPayload):  # not JSON after all (changed since)
                dead = [] if parsed is None else [parsed]
                parsed = ParsedPayload(
                    empty_columns((), self._name), _NO_ROWS, dead, [0] * len(dead)
                )
            where = np.concatenate([parsed.rows, np.array(parsed.dead_rows, np.int64)])
            is_reading = np.zeros(len(where), bool)
            is_reading[: len(parsed.rows)] = True
            is_reading = is_reading[np.argsort(where, kind="stable")]
            # readings before each item, in row order: items a..b hold readings ahead[a]..ahead[b]
            self._whole = parsed, np.concatenate([[0], np.cumsum(is_reading)])
        parsed, ahead = self._whole
        start = self._position.rows
        stop = min(start + self._batch_size, len(ahead) - 1)
        if start >= stop:
            raise StopIteration()
        batch: list[ColumnItem] = []
        first, last = int(ahead[start]), int(ahead[stop])
        if last > first:
            batch.append((self._key, slice_columns(parsed.columns, first, last)))
        batch.extend(parsed.dead[start - first : stop - last])
        self._position = self._position._replace(rows=stop)
        return batch

    def snapshot(self) -> Position:
        return self._position

    def close(self) -> None:
        self._file.close()


_NO_ROWS = np.zeros(0, np.int64)


class ColumnFileSource(FixedPartitionedSource[ColumnItem, Position]):
    """Column batches and dead letters from a payload file, in `shards` recoverable partitions.

    `shards=1` reads every row in file order (global mode: one shard, one key). `progress`, when
    given, is told after each batch how many rows it held and how far into the file it got.
    A row whose time is outside `window` is a dead letter.
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
        if shards < 1:
            raise ValueError("shards must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.path = Path(path)
        self.shards = shards
        self.batch_size = batch_size
        self.progress = progress
        self.window = window
        self._lines = DecodedLines()

    def registry(self, area_km: float, radius_km: float) -> Registry:
        """The file's sensors by area, for the area stage (`preparation.registry.file_registry`)."""
        return file_registry(self.path, area_km, radius_km, self.window)

    def list_parts(self) -> list[str]:
        digits = len(str(self.shards - 1))  # names sort as numbers do (see ShardedFileSource)
        return [f"shard-{i:0{digits}d}-of-{self.shards}" for i in range(self.shards)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any | None) -> _ColumnPartition:
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        shard = int(for_part.split("-")[1])
        single = is_single_document(self.path)
        resume = Position(*resume_state) if resume_state is not None else Position()
        self._lines.readers += 1
        return _ColumnPartition(
            self.path,
            shard,
            self.shards,
            self.batch_size,
            single,
            resume,
            self.progress,
            self._lines,
            self.window,
        )
