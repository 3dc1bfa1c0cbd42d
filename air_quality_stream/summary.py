"""The end-of-run summary: a short block on stderr, and the same as JSON in a file on request.

The flow's totals (`dataflows.steps` counts: readings, anomalies, dead letters, imputed values
per field, events, ...) come from the file the engine wrote them to; a live run that was
stopped has none, and says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def read_totals(path: Path) -> dict[str, int] | None:
    """The totals the run wrote (summed, should several lines come), or None."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    totals: dict[str, int] = {}
    for line in lines:
        for name, value in json.loads(line).items():
            totals[name] = totals.get(name, 0) + value
    return totals if lines else None


def summary(
    command: str, code: int, seconds: float, totals: Mapping[str, int] | None, **facts: Any
) -> dict[str, Any]:
    """What the run did, as one JSON-able record."""
    return {
        "command": command,
        "exit_code": code,
        "seconds": round(seconds, 3),
        **facts,
        "totals": dict(sorted(totals.items())) if totals is not None else None,
    }


def block(record: Mapping[str, Any]) -> str:
    """The summary as a few aligned lines.

    >>> print(block(summary("run", 0, 2.5, {"readings": 1200, "anomalies": 3,
    ...     "imputed:humidity": 2, "events:gap": 4, "dead_letters": 1}, processes=1)))
    summary: run finished in 2.5 s (exit code 0)
      readings      1,200
      anomalies     3
      dead letters  1
      imputed       2 values (humidity 2)
      events        4 (gap 4)
      processes     1
    """
    state = "finished" if record["exit_code"] == 0 else "failed"
    lines = [
        f"summary: {record['command']} {state} in {record['seconds']:.1f} s "
        f"(exit code {record['exit_code']})"
    ]
    totals = record["totals"]
    if totals is None:
        lines.append("  totals        none (the run did not reach its end)")
        totals = {}
    else:
        for name in ("readings", "anomalies", "dead_letters"):
            lines.append(f"  {name.replace('_', ' '):<13} {totals.get(name, 0):,}")
        for group, label, unit in (("imputed", "imputed", " values"), ("events", "events", "")):
            parts = {k.split(":", 1)[1]: v for k, v in totals.items() if k.startswith(group + ":")}
            if parts:
                detail = ", ".join(f"{k} {v:,}" for k, v in sorted(parts.items()))
                lines.append(f"  {label:<13} {sum(parts.values()):,}{unit} ({detail})")
    for name, value in record.items():
        if name not in ("command", "exit_code", "seconds", "totals") and value is not None:
            lines.append(f"  {name.replace('_', ' '):<13} {value}")
    return "\n".join(lines)


def write_json(path: str | Path, record: Mapping[str, Any]) -> None:
    """The summary record as a JSON file."""
    Path(path).write_text(json.dumps(record, indent=2) + "\n")
