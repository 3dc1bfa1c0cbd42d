"""The imputation tutorial flow: windowed mean imputation per key, done properly.

    python -m bytewax.run dataflows.impute:flow
    python -m bytewax.run "dataflows.impute:build_flow(keys=5, n=1000, strategy='median')"

Bytewax's classic example: for each of `keys` keys ("sensor-0", ...) a source yields `n` random
integers in 0..10 (inclusive) from a fixed seed, with a missing value at every 5th position
(0, 5, 10, ...); each key fills its gaps with the mean (or median, or last) of its last `window`
observed values. Unlike the original tutorial, whose window also held the missing slots (so a
window of 10 averaged fewer than 10 values, or NaN), the window holds observed values only.
One JSON line per value on stdout, in index order per key:
`{"key": "sensor-0", "index": 5, "value": null, "imputed": 6.2}`; `imputed` equals `value` when
the value was observed, and is null only while the key has observed nothing yet.

Each key is one partition of a `FixedPartitionedSource`, generated from (seed, key number), so
keys spread over workers and `-w 1`, `-w 2` print the same lines; the imputer lives in keyed
state (`stateful_map`) and its snapshot is the source position and the imputer, so a resumed
run goes on where it stopped.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from config import install_excepthook
from core.errors import ConfigError
from imputers.window import WindowImputer
from sinks.jsonlines import JsonLinesSink

install_excepthook()  # under bytewax.run, a ConfigError prints as its one line

MISSING_EVERY = 5
HIGH = 10  # values are integers in 0..HIGH


def key_name(number: int) -> str:
    return f"sensor-{number}"


def generate(number: int, n: int, seed: int) -> list[int | None]:
    """Key `number`'s values: integers in 0..10 from (seed, number), None at every 5th index.

    >>> generate(0, 7, seed=0)
    [None, 7, 5, 2, 3, None, 0]
    """
    draws = np.random.default_rng([seed, number]).integers(0, HIGH + 1, size=n)
    return [None if i % MISSING_EVERY == 0 else int(v) for i, v in enumerate(draws)]


class _KeyPartition(StatefulSourcePartition[tuple[str, tuple[int, int | None]], int]):
    def __init__(self, key: str, values: list[int | None], start: int, batch_size: int):
        self._key = key
        self._values = values
        self._next = start
        self._batch_size = batch_size

    def next_batch(self) -> list[tuple[str, tuple[int, int | None]]]:
        if self._next >= len(self._values):
            raise StopIteration()
        stop = min(self._next + self._batch_size, len(self._values))
        batch = [(self._key, (i, self._values[i])) for i in range(self._next, stop)]
        self._next = stop
        return batch

    def snapshot(self) -> int:
        return self._next


class RandomSeriesSource(FixedPartitionedSource[tuple[str, tuple[int, int | None]], int]):
    """`(key, (index, value or None))` for `keys` keys of `n` values each, one partition a key."""

    def __init__(self, keys: int = 3, n: int = 100, seed: int = 0, batch_size: int = 100):
        if keys < 1 or n < 0 or batch_size < 1:
            raise ValueError("need keys ≥ 1, n ≥ 0, batch_size ≥ 1")
        self.keys = keys
        self.n = n
        self.seed = seed
        self.batch_size = batch_size

    def list_parts(self) -> list[str]:
        return [key_name(k) for k in range(self.keys)]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KeyPartition:
        number = int(for_part.rsplit("-", 1)[1])
        values = generate(number, self.n, self.seed)
        return _KeyPartition(for_part, values, resume_state or 0, self.batch_size)


class ImputeValue:
    """`stateful_map` mapper: fill one value from its key's window of observed values."""

    def __init__(self, window: int, strategy: str):
        self.window = window
        self.strategy = strategy
        WindowImputer(["value"], window, strategy)  # fail at build time on a bad config

    def __call__(
        self, imputer: WindowImputer | None, item: tuple[int, int | None]
    ) -> tuple[WindowImputer, tuple[int, int | None, float | None]]:
        if imputer is None:
            imputer = WindowImputer(["value"], self.window, self.strategy)
        index, value = item
        filled, _imputed, _missing = imputer.impute_one({"value": value})
        return imputer, (index, value, filled["value"])


def record(key_item: tuple[str, tuple[int, int | None, float | None]]) -> dict[str, Any]:
    key, (index, value, imputed) = key_item
    return {"key": key, "index": index, "value": value, "imputed": imputed}


def build_flow(
    keys: int = 3,
    n: int = 100,
    window: int = 10,
    strategy: str = "mean",
    seed: int = 0,
    output: Any = None,
) -> Dataflow:
    """The tutorial flow; `output` is a Bytewax sink of the records (default: JSON lines on
    stdout). Its input is generated, so only its options can be wrong: a bad one is a
    `ConfigError`, one line, when the flow is built."""
    try:
        source, step = RandomSeriesSource(keys, n, seed), ImputeValue(window, strategy)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    flow = Dataflow("impute")
    values = op.input("values", flow, source)
    filled = op.stateful_map("impute", values, step)
    op.output("out", op.map("record", filled, record), output or JsonLinesSink())
    return flow


flow = build_flow()
