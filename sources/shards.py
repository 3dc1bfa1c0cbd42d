"""A recoverable Bytewax source of readings from a payload file, split into fixed sensor shards.

The file's sensors are split into a fixed number of shards (by the hash Bytewax routes a sensor's
key with, `sources.routing`); each shard is one partition that reads the whole file and keeps its
own sensors' rows, so a sensor's readings come from one partition, in file order, whatever the
number of workers; with as many workers as shards, each on the worker that keeps their state.
In global mode there is one shard with every row. A shard's resume state is a `Position`: the
byte offset and number of the next line, so a flow restarted from a recovery snapshot goes on
where that shard stopped.

The file is read as `sources.documents` reads it: JSON lines of payloads (one line = one unit of
progress) or, when the first line is not a whole document, one pretty-printed payload, whose rows
are then counted in `Position.rows`. Rows without a usable sensor, lines that are not JSON and
lines longer than `MAX_LINE_BYTES` (read no further than that) belong to shard 0, so every row
becomes exactly one reading or dead letter in the whole flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from core.dead_letters import RAW_LIMIT, Prefix
from core.readings import DeadLetter, Item
from sources.documents import SourceError, is_document, skip_rest
from sources.payload import DEFAULT_WINDOW, PayloadError, decode_line, parse_payload
from sources.purpleair import sensor_owner
from sources.times import TimeWindow

#: The longest line read whole (a whole PurpleAir answer is about 3 MB); a longer one is one
#: dead letter, its first bytes and its length, and is read no further, so a file without
#: newlines cannot fill memory.
MAX_LINE_BYTES = 256 << 20
#: Shards in "sensor" mode: the most workers that can share the reading of one file. Every shard
#: decodes every line, so more shards than workers only cost time; 2 suits one or two processes.
DEFAULT_SHARDS = 2


class Position(NamedTuple):
    """Where a shard goes on: the next line's byte offset and number, rows done in it."""

    offset: int = 0
    line: int = 1
    rows: int = 0


def is_single_document(path: Path) -> bool:
    """True when the file is one (pretty-printed) payload rather than JSON lines of them."""
    with path.open("rb") as f:
        while line := f.readline(MAX_LINE_BYTES):
            if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
                return False  # a line longer than any payload: read as lines (a dead letter)
            if line.strip():
                return not is_document(line) and is_document(path.read_bytes())
    return False


class _ShardPartition(StatefulSourcePartition[Item, Position]):
    def __init__(
        self,
        path: Path,
        shard: int,
        shards: int,
        batch_size: int,
        single_document: bool,
        resume: Position,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        self._file = path.open("rb")
        self._window = window
        self._name = path.name
        self._batch_size = batch_size
        self._position = resume
        self._single = single_document
        self._file.seek(resume.offset)
        self._pending: Iterator[Item] | None = None
        self._owns = sensor_owner(shard, shards)
        self._owner = None if shards == 1 else self._owns  # one shard: every row, no filter

    def _line_items(self, origin: str, document: bytes) -> Iterable[Item]:
        try:
            payload = decode_line(document)
        except PayloadError as exc:
            if not self._owns(None):
                return ()
            return (DeadLetter(str(exc), document.rstrip(b"\r\n"), origin),)
        return parse_payload(payload, origin=origin, owner=self._owner, window=self._window)

    def next_batch(self) -> list[Item]:
        if self._single:
            return self._next_rows()
        batch: list[Item] = []
        while len(batch) < self._batch_size:
            line = self._file.readline(MAX_LINE_BYTES)
            if not line:
                if batch:
                    return batch
                raise StopIteration()
            offset, number, _ = self._position
            length = len(line)
            if length == MAX_LINE_BYTES and not line.endswith(b"\n"):
                length += skip_rest(self._file, MAX_LINE_BYTES)
                if self._owns(None):
                    reason = f"line of {length} bytes, longer than {MAX_LINE_BYTES}"
                    raw = Prefix(line[:RAW_LIMIT], length)
                    batch.append(DeadLetter(reason, raw, f"{self._name}:{number}"))
                line = b""
            self._position = Position(offset + length, number + 1, 0)
            if line.strip():
                batch.extend(self._line_items(f"{self._name}:{number}", line))
        return batch

    def _next_rows(self) -> list[Item]:
        if self._pending is None:  # the whole file is one payload: skip the rows already done
            self._file.seek(0)
            items = self._line_items(self._name, self._file.read())
            self._pending = islice(items, self._position.rows, None)
        batch = list(islice(self._pending, self._batch_size))
        if not batch:
            raise StopIteration()
        self._position = self._position._replace(rows=self._position.rows + len(batch))
        return batch

    def snapshot(self) -> Position:
        return self._position

    def close(self) -> None:
        self._file.close()


class ShardedFileSource(FixedPartitionedSource[Item, Position]):
    """Readings and dead letters from a payload file, in `shards` recoverable partitions.

    `shards=1` reads every row in file order (global mode). The file must exist where the flow
    runs; on several machines, give each the same file at the same path, and each shard is read
    once in the whole cluster. A row whose time is outside `window` is a dead letter.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        shards: int = DEFAULT_SHARDS,
        batch_size: int = 1000,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        if shards < 1:
            raise ValueError("shards must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.path = Path(path)
        self.shards = shards
        self.batch_size = batch_size
        self.window = window

    def list_parts(self) -> list[str]:
        # Bytewax deals partitions out to workers in sorted name order, so names sort as numbers
        # do: with as many workers as shards (or a divisor of it), shard i is read on the worker
        # that keeps the state of its sensors (`sensor_worker`), and no reading crosses workers
        digits = len(str(self.shards - 1))
        return [f"shard-{i:0{digits}d}-of-{self.shards}" for i in range(self.shards)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: Position | None
    ) -> _ShardPartition:
        if not self.path.is_file():
            raise SourceError(f"no such file: {self.path}")
        shard = int(for_part.split("-")[1])
        single = is_single_document(self.path)
        resume = Position(*resume_state) if resume_state is not None else Position()
        return _ShardPartition(
            self.path, shard, self.shards, self.batch_size, single, resume, self.window
        )
