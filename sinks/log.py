"""A Bytewax sink that logs each item, a line of text (a run's totals), at INFO to stderr."""

from __future__ import annotations

import logging

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from core.logs import ensure_stderr_handler


class _LogPartition(StatelessSinkPartition[str]):
    def __init__(self, logger: logging.Logger):
        self._log = logger

    def write_batch(self, items: list[str]) -> None:
        for item in items:
            self._log.info(item)


class LogSink(DynamicSink[str]):
    """Log each item at INFO on the logger `name` (an `air_quality` logger: stderr by default)."""

    def __init__(self, name: str = "air_quality"):
        self.name = name

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LogPartition:
        logger = logging.getLogger(self.name)
        ensure_stderr_handler(logger)
        return _LogPartition(logger)
