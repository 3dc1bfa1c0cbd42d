"""An independent reference pipeline for the flow tests: plain Python lists, numpy and river.

It shares no code with the project: rows are read with `json`, imputed from lists of observed
values with `numpy.mean`, and scored by river's own `HalfSpaceTrees` (score, then learn).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from river.anomaly import HalfSpaceTrees

IMPUTED = ("temperature", "humidity", "pressure", "pm1.0_cf_1")


def reference_anomalies(path: Path, *, key: str = "sensor", threshold: float = 0.7, window=10):
    """Set of (sensor_index, last_seen, score) with score > threshold, all rows assumed valid."""
    observed = defaultdict(lambda: defaultdict(list))
    models = {}
    found = set()
    text = Path(path).read_text()
    docs = [json.loads(line) for line in text.splitlines()] if "\n{" in text else [json.loads(text)]
    for doc in docs:
        fields = doc["fields"]
        for row in doc["data"]:
            rec = dict(zip(fields, row, strict=True))
            k = str(rec["sensor_index"]) if key == "sensor" else "global"
            for name in IMPUTED:
                if rec.get(name) is None:
                    history = observed[k][name][-window:]
                    rec[name] = float(np.mean(history)) if history else None
                else:
                    observed[k][name].append(rec[name])
            if rec["pm1.0_cf_1"] is None:
                continue
            model = models.setdefault(
                k,
                HalfSpaceTrees(
                    n_trees=10, height=8, window_size=72, limits={"pm1.0_cf_1": (0, 1200)}, seed=11
                ),
            )
            x = {"pm1.0_cf_1": rec["pm1.0_cf_1"]}
            score = model.score_one(x)
            model.learn_one(x)
            if score > threshold:
                found.add(
                    (rec["sensor_index"], rec.get("last_seen", doc.get("data_time_stamp")), score)
                )
    return found
