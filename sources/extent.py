"""How many rows a file holds, estimated from its first lines, for a run's time left.

A JSON-lines file of payloads: the rows (`data` entries) of its first lines, scaled by the
file's size over theirs; a CSV of readings: its lines, likewise. A file that is one payload,
or that does not read, gives None (the progress shows rates, not time left).
"""

from __future__ import annotations

import json
from pathlib import Path

#: Bytes read to estimate from.
SAMPLE_BYTES = 1 << 20


def estimate_rows(path: str | Path, sample: int = SAMPLE_BYTES) -> int | None:
    """About how many rows (readings or dead letters) the file holds; None when unknown.

    >>> import tempfile, os
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "polls.jsonl"
    ...     _ = p.write_text('{"fields": ["sensor_index"], "data": [[1], [2]]}\\n' * 10)
    ...     estimate_rows(p)
    20
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            lines = file.readlines(sample)
    except OSError:
        return None
    whole = [line for line in lines if line.endswith(b"\n")] or lines
    read = sum(map(len, whole))
    if not whole or read == 0:
        return None
    if path.suffix.lower() == ".csv":
        rows = len(whole) - 1
    else:
        rows = 0
        for line in whole:
            try:
                rows += len(json.loads(line).get("data", ()))
            except (ValueError, AttributeError, TypeError, RecursionError):
                return None  # one pretty-printed payload, or not payloads (or nested too deep)
    return max(round(rows * size / read), 1)
