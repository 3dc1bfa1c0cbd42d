"""JSON-lines sinks that keep every line whole, whatever the number of workers and processes.

Each worker writes its batch as one string: to a file opened with O_APPEND (one `write` per batch,
so processes never interleave inside a line), or to stdout/stderr under a lock that the worker
threads of one process share.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from core.json_lines import to_line


class _FilePartition(StatelessSinkPartition[Any]):
    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_batch(self, items: list[Any]) -> None:
        data = "".join(to_line(item) + "\n" for item in items).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        os.close(self._fd)


class _StreamPartition(StatelessSinkPartition[Any]):
    def __init__(self, stream_name: str, lock: threading.Lock):
        self._stream_name = stream_name
        self._lock = lock

    def write_batch(self, items: list[Any]) -> None:
        text = "".join(to_line(item) + "\n" for item in items)
        stream = getattr(sys, self._stream_name)
        with self._lock:
            stream.write(text)
            stream.flush()


class JsonLinesSink(DynamicSink[Any]):
    """Write each item as one JSON line to `path` (appended) or, when None, to stdout or stderr."""

    def __init__(self, path: str | None = None, *, stream: str = "stdout"):
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream must be 'stdout' or 'stderr'")
        self.path = None if path in (None, "-") else str(path)
        self.stream = stream
        self._lock = threading.Lock()

    def build(
        self, step_id: str, worker_index: int, worker_count: int
    ) -> StatelessSinkPartition[Any]:
        if self.path is not None:
            return _FilePartition(self.path)
        return _StreamPartition(self.stream, self._lock)
