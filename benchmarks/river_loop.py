"""A plain river loop per sensor: the cost of doing the job without Bytewax or quality control.

Each row of a poll file is decoded into a dict; per sensor, a window mean (river's
`utils.Rolling` over `stats.Mean`) fills a missing PM value, and the sensor's own river
`HalfSpaceTrees` scores then learns it. No validation, channels, EPA correction, gap events or
area stage: this is the floor a user would write by hand, the baseline the flow is measured
against in `benchmarks.run` (case `river_loop`).

    >>> import json, tempfile, pathlib
    >>> poll = {"fields": ["sensor_index", "pm1.0_cf_1"], "data": [[1, 5.0], [2, None]]}
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "polls.jsonl"
    >>> _ = path.write_text(json.dumps(poll) + "\\n")
    >>> run(str(path))
    2
"""

from __future__ import annotations

import json

from river import anomaly, stats, utils

FEATURE = "pm1.0_cf_1"
WINDOW = 10


class _Sensor:
    """One sensor's window mean and detector (the example's settings)."""

    __slots__ = ("mean", "trees")

    def __init__(self) -> None:
        self.mean = utils.Rolling(stats.Mean, window_size=WINDOW)
        self.trees = anomaly.HalfSpaceTrees(
            n_trees=10, height=8, window_size=72, limits={FEATURE: (0, 1200)}, seed=11
        )


def run(path: str) -> int:
    """Score every row of the poll file at `path`; return how many rows were scored."""
    sensors: dict[object, _Sensor] = {}
    rows = 0
    with open(path) as fh:
        for line in fh:
            if not line.strip():
                continue
            poll = json.loads(line)
            fields = poll["fields"]
            for values in poll["data"]:
                row = dict(zip(fields, values, strict=True))
                sensor = sensors.get(row["sensor_index"])
                if sensor is None:
                    sensor = sensors[row["sensor_index"]] = _Sensor()
                value = row.get(FEATURE)
                if value is None:
                    value = sensor.mean.get() or 0.0
                else:
                    sensor.mean.update(value)
                x = {FEATURE: value}
                sensor.trees.score_one(x)
                sensor.trees.learn_one(x)
                rows += 1
    return rows
