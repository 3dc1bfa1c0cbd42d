"""The neighbour rule on one moment of real data: how many sensors of a PurpleAir payload it
flags, and the largest cases.

The flow applies the rule per 10-minute window; a snapshot is one moment, so each sensor's value
is its one reading (`pm2.5_cf_1` by default) and its neighbours are every other sensor of the
payload within the radius (`preparation.neighbours.disagreements`, the flow's own rule). The
pollution-event rule needs each sensor's baseline over time, so a single moment cannot show it.

    python -m evaluation.spatial ../shared/data/purpleair_snapshot.json [--top 5]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from preparation.neighbours import NeighbourRule, disagreements


def snapshot_flags(
    path: str | Path, field: str = "pm2.5_cf_1", rule: NeighbourRule | None = None
) -> dict[str, Any]:
    """Counts (sensors, with a value and a position, judged, flagged) and the flagged cases."""
    rule = rule or NeighbourRule()
    doc = json.loads(Path(path).read_text())
    names = doc["fields"]
    s, lat, lon, pm = (names.index(n) for n in ("sensor_index", "latitude", "longitude", field))
    rows = [
        r
        for r in doc["data"]
        if r[lat] is not None and r[lon] is not None and r[pm] is not None
        and abs(r[lat]) <= 90 and abs(r[lon]) <= 180
    ]  # fmt: skip
    values = [float(r[pm]) for r in rows]
    verdicts = disagreements(
        rule, [r[lat] for r in rows], [r[lon] for r in rows], values, range(len(rows))
    )
    cases = [
        {
            "sensor_index": rows[i][s],
            "latitude": rows[i][lat],
            "longitude": rows[i][lon],
            field: values[i],
            "neighbours": v[0],
            "centre": v[2],
            "spread": round(v[3], 2),
        }
        for i, v in enumerate(verdicts)
        if v is not None and v[1]
    ]
    cases.sort(key=lambda c: -abs(c[field] - c["centre"]))
    return {
        "sensors": len(doc["data"]),
        "placed": len(rows),
        "judged": sum(v is not None for v in verdicts),
        "flagged": len(cases),
        "high": sum(c[field] > c["centre"] for c in cases),
        "cases": cases,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("payload")
    parser.add_argument("--field", default="pm2.5_cf_1")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args(argv)
    found = snapshot_flags(args.payload, args.field)
    print(
        f"{found['sensors']} sensors, {found['placed']} with a position and {args.field}, "
        f"{found['judged']} with at least 3 neighbours within 10 km; neighbour_disagreement: "
        f"{found['flagged']} ({found['high']} above their neighbours)"
    )
    for case in found["cases"][: args.top]:
        print(json.dumps(case))
    return 0


if __name__ == "__main__":
    sys.exit(main())
