"""Shared fixtures: the real PurpleAir snapshot (skipped when absent) and small payload builders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT.parent / "shared" / "data" / "purpleair_snapshot.json"


@pytest.fixture
def snapshot_path() -> Path:
    if not SNAPSHOT.is_file():
        pytest.skip(f"real PurpleAir snapshot not found at {SNAPSHOT} (../shared/data/)")
    return SNAPSHOT


def payload(rows, fields=("sensor_index", "last_seen", "humidity", "pm1.0_cf_1"), stamp=1000):
    """A PurpleAir-shaped payload dict."""
    return {"data_time_stamp": stamp, "fields": list(fields), "data": list(rows)}


def write_lines(path: Path, documents) -> Path:
    """Write documents (dicts, or raw str lines) as JSON lines."""
    with path.open("w") as f:
        for doc in documents:
            f.write((doc if isinstance(doc, str) else json.dumps(doc)) + "\n")
    return path
