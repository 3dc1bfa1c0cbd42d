"""Batches of `Reading`s → one `(shard key, Columns)` per shard and field layout.

The column path's way in for sources that make `Reading` objects (the live poller, a URL, any
Bytewax source of readings and dead letters): each batch is grouped by the shard its sensor
belongs to (the shard `sources.purpleair.sensor_owner` gives it: the worker Bytewax routes the
sensor's key to, out of `shards`), in order, and each run of readings with the same fields
becomes one `Columns`. Dead letters and `(key, Columns)` items (a source of column batches)
pass through; anything else becomes a dead letter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from columns.batch import Columns
from columns.source import shard_key
from core.readings import DeadLetter, Reading
from sources.routing import key_worker

#: Sensors a grouper remembers the shard of before it starts over (bounded memory).
_REMEMBERED = 1 << 17
#: The one key of global mode.
GLOBAL_KEY = "global"


def columns_of(readings: list[Reading], origin: str = "") -> list[Columns]:
    """Readings (of one shard, in order) as `Columns`, one per run of the same fields."""
    out = []
    runs: list[tuple[tuple[str, ...], list[Reading]]] = []
    for reading in readings:
        fields = tuple(reading.values)
        if not runs or runs[-1][0] != fields:
            runs.append((fields, []))
        runs[-1][1].append(reading)
    for fields, run in runs:
        values = np.array([list(r.values.values()) for r in run], dtype=np.float64)
        text = [r.text for r in run] if any(r.text for r in run) else None
        out.append(
            Columns(
                np.array([r.sensor_index for r in run], np.int64),
                np.array([r.time for r in run], np.int64),
                fields,
                values.reshape(len(run), len(fields)),
                text,
                origin,
            )
        )
    return out


def _is_column_item(item: Any) -> bool:
    return type(item) is tuple and len(item) == 2 and type(item[1]) is Columns


class ReadingGrouper:
    """`group(batch)`: a source batch of readings and dead letters as `(key, Columns)` items
    and dead letters. `shards=None` is global mode: every reading under one key."""

    def __init__(self, shards: int | None):
        self.shards = shards
        self._shard_of: dict[int, str] = {}
        self._keys = {} if shards is None else {i: shard_key(i, shards) for i in range(shards)}

    def key(self, sensor: int) -> str:
        if self.shards is None:
            return GLOBAL_KEY
        found = self._shard_of.get(sensor)
        if found is None:
            if len(self._shard_of) >= _REMEMBERED:
                self._shard_of.clear()
            found = self._shard_of[sensor] = self._keys[key_worker(str(sensor), self.shards)]
        return found

    def group(self, batch: Iterable[Any]) -> list[Any]:
        out: list[Any] = []
        shards: dict[str, list[Reading]] = {}
        for item in batch:
            if type(item) is Reading:
                shards.setdefault(self.key(item.sensor_index), []).append(item)
            elif type(item) is DeadLetter or _is_column_item(item):
                out.append(item)  # a source of column batches: as they are
            else:
                out.append(DeadLetter(f"not a Reading: {type(item)}", item))
        for key, readings in shards.items():
            out.extend((key, columns) for columns in columns_of(readings))
        return out
