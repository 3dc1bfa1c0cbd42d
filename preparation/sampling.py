"""A seeded reservoir sample (Vitter's Algorithm R) of cleaned readings, per sensor or global.

Each key keeps at most `size` items whatever the stream length: the n-th item replaces a random
slot with probability size / n, so every item seen is in the sample with the same probability.
O(1) per item. At the end of a finite run (`on_eof`) `SampleLogic` emits its key's sample, in
arrival order, for exploratory analysis. Per-sensor samples are seeded with `"{seed}:{sensor}"`,
so they do not depend on the worker count; a global sample does when several workers feed it.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable
from typing import Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

from core.readings import Reading

T = TypeVar("T")
SAMPLE_BY = ("sensor", "global")


class Reservoir(Generic[T]):
    """A uniform random sample of at most `size` items of a stream.

    >>> sample = Reservoir(3, seed="11")
    >>> for i in range(3):
    ...     sample.offer(i)
    >>> sample.items()
    [0, 1, 2]
    >>> for i in range(3, 1000):
    ...     sample.offer(i)
    >>> len(sample.items()), sample.seen
    (3, 1000)
    """

    def __init__(self, size: int, seed: int | str = 0):
        if size < 1:
            raise ValueError("sample size must be at least 1")
        self.size = size
        self.rng = random.Random(str(seed))
        self.seen = 0
        self.slots: list[tuple[int, T]] = []  # (arrival number, item)

    def offer(self, item: T) -> None:
        """Consider one item: kept for sure while the sample is not full, else with p = size/n."""
        self.seen += 1
        if len(self.slots) < self.size:
            self.slots.append((self.seen, item))
            return
        j = self.rng.randrange(self.seen)
        if j < self.size:
            self.slots[j] = (self.seen, item)

    def items(self) -> list[T]:
        """The sample, in arrival order."""
        return [item for _n, item in sorted(self.slots, key=lambda slot: slot[0])]


class SampleLogic(StatefulBatchLogic[Reading, Reading, Reservoir]):
    """Bytewax per-key logic: keep a reservoir of readings, emit it at the end of the input."""

    def __init__(self, size: int, seed: int, by: str = "sensor", state: Reservoir | None = None):
        if by not in SAMPLE_BY:
            raise ValueError(f"sample_by must be one of {SAMPLE_BY}, got {by!r}")
        self.size = size
        self.seed = seed
        self.by = by
        self.reservoir = state

    def on_batch(self, values: list[Reading]) -> tuple[Iterable[Reading], bool]:
        if self.reservoir is None:
            sensor = values[0].sensor_index
            seed = f"{self.seed}" if self.by == "global" else f"{self.seed}:{sensor}"
            self.reservoir = Reservoir(self.size, seed)
        for reading in values:
            self.reservoir.offer(reading)
        return [], StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[Reading], bool]:
        items = [] if self.reservoir is None else self.reservoir.items()
        return items, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Reservoir | None:
        return copy.deepcopy(self.reservoir)
