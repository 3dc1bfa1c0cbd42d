"""Progress of a long finite job made of known steps: a line per step with the time left.

The time left is the time so far scaled by the weight of the steps still to run over that of
those done; the weights are each step's share of a measured run, so the estimate holds when
the machine is faster or slower as a whole.

>>> clock = iter([0.0, 10.0, 30.0]).__next__
>>> lines = []
>>> p = StageProgress("report", {"stream": 1, "batch": 3}, clock=clock, write=lines.append)
>>> p.done("stream"); p.done("batch")
>>> print("\\n".join(lines))
report: stream done (1 of 2), 0:00:10 so far, about 0:00:30 left
report: batch done (2 of 2), 0:00:30 so far, finished
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("air_quality.progress")


class StageProgress:
    """Steps of a job by name with their weights; `done(name)` writes one line."""

    def __init__(
        self,
        job: str,
        weights: Mapping[str, float],
        *,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], Any] | None = None,
    ):
        self.job = job
        self.weights = dict(weights)
        self._clock = clock
        self._write = write or self._log
        self._done: list[str] = []
        self._started = clock()

    @staticmethod
    def _log(line: str) -> None:
        from core.logs import ensure_stderr_handler

        ensure_stderr_handler(log)
        log.info(line)

    def done(self, name: str) -> None:
        """Step `name` is finished: say so, with the time so far and the time left."""
        self._done.append(name)
        elapsed = self._clock() - self._started
        finished = sum(self.weights.get(n, 0.0) for n in self._done)
        left_weight = sum(w for n, w in self.weights.items() if n not in self._done)
        if left_weight <= 0:
            left = "finished"
        elif finished > 0:
            left = f"about {_clock_time(elapsed * left_weight / finished)} left"
        else:
            left = "time left unknown"
        position = f"{len(self._done)} of {len(self.weights)}"
        self._write(f"{self.job}: {name} done ({position}), {_clock_time(elapsed)} so far, {left}")


def _clock_time(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
