"""Counts of readings, imputed values, anomalies and dead letters: Prometheus and a progress log.

The counters live in `prometheus_client.REGISTRY`, which bytewax serves at `/metrics` on its API
port (3030, or `BYTEWAX_DATAFLOW_API_PORT`) when `BYTEWAX_DATAFLOW_API_ENABLED` is set; they are
cumulative per process (module-level, as the registry requires). A `Progress` object keeps the
same counts for one run of one flow, and every `interval` seconds logs totals and the reading
rate to stderr, so a long replay shows how far it got. The flow counts whole batches
(`flat_map_batch`), not items, so counting costs one call per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import Counter

from core.logs import ensure_stderr_handler

READINGS = Counter("air_quality_readings", "Readings cleaned and scored")
IMPUTED = Counter("air_quality_imputed_values", "Values filled in by the imputer", ["field"])
ANOMALIES = Counter("air_quality_anomalies", "Readings reported as anomalies")
DEAD_LETTERS = Counter("air_quality_dead_letters", "Rows and lines that could not be parsed")

log = logging.getLogger("air_quality.progress")


class Progress:
    """One run's counts, mirrored into the Prometheus counters, logged every `interval` s.

    Its methods take and return a whole batch, for `op.flat_map_batch`; the worker threads of a
    process share one `Progress`, under a lock. `interval=None` never logs. `total`: the rows
    (readings and dead letters) the run is expected to read, when known: each line then says
    the share done and the time left.
    """

    def __init__(
        self,
        interval: float | None = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        total: int | None = None,
    ):
        self.interval = interval
        self.total = total
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Tally[str] = Tally()
        self._started = clock()
        self._last_time = self._started
        self._last_readings = 0

    def received(self, received: int, imputed: Mapping[str, int]) -> None:
        """Count `received` cleaned readings and `{field: n}` imputed values (the engine counts
        its batches so, most of its readings never becoming objects)."""
        READINGS.inc(received)
        for name, n in imputed.items():
            IMPUTED.labels(name).inc(n)
        with self._lock:
            self._counts["readings"] += received
            for name, n in imputed.items():
                self._counts[f"imputed:{name}"] += n
        self._tick()

    def anomalies(self, batch: list[Any]) -> list[Any]:
        """Count anomalies."""
        ANOMALIES.inc(len(batch))
        self._add("anomalies", len(batch))
        return batch

    def dead_letters(self, batch: list[Any]) -> list[Any]:
        """Count dead letters."""
        DEAD_LETTERS.inc(len(batch))
        self._add("dead_letters", len(batch))
        return batch

    def counts(self) -> dict[str, int]:
        """This run's counts so far (in this process)."""
        with self._lock:
            return dict(self._counts)

    def _add(self, name: str, n: int) -> None:
        with self._lock:
            self._counts[name] += n
        self._tick()

    def _tick(self) -> None:
        if self.interval is None:
            return
        now = self._clock()
        with self._lock:
            elapsed = now - self._last_time
            if elapsed < self.interval:
                return
            readings = self._counts["readings"]
            rate = (readings - self._last_readings) / elapsed if elapsed > 0 else 0.0
            self._last_time, self._last_readings = now, readings
            line = progress_line(self._counts, rate, now - self._started, self.total)
        ensure_stderr_handler(log)
        log.info(line)


def progress_line(
    counts: Tally[str] | dict[str, int], rate: float, elapsed: float, total: int | None = None
) -> str:
    """`progress: 1200 readings (400/s), 3 anomalies, 0 dead letters, imputed humidity=2, ...`,
    and with the expected `total` of rows, the share done and the time left at the mean rate.

    >>> progress_line({"readings": 1200, "anomalies": 3, "imputed:humidity": 2}, 400.0, 3.0)
    'progress: 1200 readings (400/s), 3 anomalies, 0 dead letters, imputed humidity=2, after 3 s'
    >>> progress_line({"readings": 1000}, 400.0, 4.0, total=4000).split("after ")[1]
    '4 s, 25%, about 12 s left'
    """
    imputed = ", ".join(
        f"{name.split(':', 1)[1]}={n}" for name, n in sorted(counts.items()) if ":" in name
    )
    line = (
        f"progress: {counts.get('readings', 0)} readings ({rate:.0f}/s), "
        f"{counts.get('anomalies', 0)} anomalies, {counts.get('dead_letters', 0)} dead letters, "
        f"imputed {imputed or 'none'}, after {elapsed:.0f} s"
    )
    done = counts.get("readings", 0) + counts.get("dead_letters", 0)
    if total and done:
        share = min(done / total, 0.99)  # an estimate: never "done" before the end
        line += f", {100 * share:.0f}%, about {elapsed * (1 - share) / share:.0f} s left"
    return line
