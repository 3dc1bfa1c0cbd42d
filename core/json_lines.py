"""The one JSON text a record is written as: the sinks' lines, and what a dead letter's raw
input is bounded in."""

from __future__ import annotations

import json
from typing import Any


def to_line(record: Any) -> str:
    """One compact JSON line (no NaN: JSON has none)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False, default=str)
