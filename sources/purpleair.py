"""A Bytewax source of PurpleAir readings from a recorded payload file or URL.

Each worker reads the documents and parses only the rows of its own sensors, so a sensor's
readings come from one worker, in file order, whatever the worker count. In global mode one
worker reads everything, so the rows reach the single detector in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from bytewax.inputs import DynamicSource, StatelessSourcePartition

from core.readings import DeadLetter, Item
from sources.documents import URL_LIMITS, check_reachable, is_url, iter_documents
from sources.http import HttpLimits, limits_from
from sources.payload import DEFAULT_WINDOW, PayloadError, decode_line, parse_payload
from sources.routing import key_worker, key_workers
from sources.times import TimeWindow

#: Sensors a `sensor_owner` remembers before it starts over, so its memory stays bounded.
_REMEMBERED_SENSORS = 1 << 17


def sensor_worker(sensor_index: int, worker_count: int) -> int:
    """The worker that reads a sensor: the one Bytewax keys it to (`sources.routing`), so its
    readings reach its state without crossing to another worker or process."""
    return key_worker(str(sensor_index), worker_count)


class _SensorOwners(dict[int | None, bool]):
    """`sensor_owner`'s memo: a sensor seen before costs one C-level lookup, not a Python call."""

    __slots__ = ("worker_index", "worker_count", "split", "last")

    def __init__(self, worker_index: int, worker_count: int, split: bool):
        super().__init__()
        self.worker_index, self.worker_count, self.split = worker_index, worker_count, split
        self.last: tuple[list[int | None], list[bool]] = ([], [])

    def __missing__(self, sensor: int | None) -> bool:
        if len(self) >= _REMEMBERED_SENSORS:
            self.clear()
        if sensor is None or not self.split:
            owned = self.worker_index == 0
        else:
            owned = sensor_worker(sensor, self.worker_count) == self.worker_index
        self[sensor] = owned
        return owned

    def learn(self, sensors: Iterable[int | None]) -> None:
        """Work out at once whether this worker reads each sensor not seen yet: a payload of
        thousands of new sensors costs one vectorised hash (`key_workers`), not one each."""
        new = [s for s in set(sensors) - self.keys() if s is not None]
        if not new or not self.split:
            return
        if len(self) + len(new) > _REMEMBERED_SENSORS:
            self.clear()
        workers = key_workers([str(s) for s in new], self.worker_count)
        self.update(zip(new, (workers == self.worker_index).tolist(), strict=True))

    def owned(self, sensors: list[int | None]) -> list[bool]:
        """`[self[s] for s in sensors]`, with new sensors learnt at once; the same sensors as
        last time (the next poll of a deployment, as a rule) get last time's answer, unchanged
        (do not change it)."""
        if sensors == self.last[0]:
            return self.last[1]
        self.learn(sensors)
        answer = list(map(self.__getitem__, sensors))
        self.last = (sensors, answer)
        return answer


def sensor_owner(
    worker_index: int, worker_count: int, split: bool = True
) -> Callable[[int | None], bool]:
    """The `owner` for `parse_payload`: does this worker read the rows of this sensor (or None)?

    Rows without a usable sensor (None) belong to worker 0, and so does every row unless `split`.
    """
    return _SensorOwners(worker_index, worker_count, split).__getitem__


def read_items(
    location: str,
    worker_index: int = 0,
    worker_count: int = 1,
    split: bool = True,
    window: TimeWindow = DEFAULT_WINDOW,
    limits: HttpLimits = URL_LIMITS,
) -> Iterator[Item]:
    """Readings and dead letters of one worker's share of the location, in file order (a row
    whose time is outside `window`: a dead letter; a URL fetched within `limits`)."""
    owns = sensor_owner(worker_index, worker_count, split)
    for origin, document in iter_documents(location, limits):
        try:
            payload = decode_line(document)
        except PayloadError as exc:
            if worker_index == 0:
                yield DeadLetter(str(exc), document.rstrip(b"\r\n"), origin)
            continue
        yield from parse_payload(payload, origin=origin, owner=owns, window=window)


class _PayloadPartition(StatelessSourcePartition[Item]):
    def __init__(self, items: Iterator[Item], batch_size: int):
        self._items = items
        self._batch_size = batch_size

    def next_batch(self) -> list[Item]:
        batch = list(islice(self._items, self._batch_size))
        if not batch:
            raise StopIteration()
        return batch


class PurpleAirSource(DynamicSource[Item]):
    """Readings (and dead letters) from a PurpleAir payload file, JSON-lines file or URL.

    `split=True` spreads sensors over workers; `split=False` has worker 0 read every row in order
    (for one global detector). A URL is fetched once, by worker 0, which then reads every row,
    within `limits` (`sources.http.HttpLimits` or its fields): a total deadline, a cap on the
    bytes, same-origin redirects only. A row whose time is outside `window` is a dead letter.
    """

    def __init__(
        self,
        location: str,
        *,
        split: bool = True,
        batch_size: int = 1000,
        window: TimeWindow = DEFAULT_WINDOW,
        limits: HttpLimits | Mapping[str, Any] | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.location = str(location)
        self.split = split and not is_url(self.location)
        self.batch_size = batch_size
        self.window = window
        self.limits = limits_from(limits, default=URL_LIMITS)
        if is_url(self.location):
            check_reachable(
                self.location, self.limits.connect_s
            )  # a configuration error, before the flow runs

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _PayloadPartition:
        if not self.split and worker_index != 0:
            return _PayloadPartition(iter(()), self.batch_size)
        items = read_items(
            self.location, worker_index, worker_count, self.split, self.window, self.limits
        )
        return _PayloadPartition(items, self.batch_size)
