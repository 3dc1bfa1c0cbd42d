"""The original streaming example's behaviour, kept only as the benchmarks' baseline.

Like that example it emits one reading per `next_batch` as a JSON string, deserialises and
imputes it with river `StatImputer`s shared by the whole process, and scores it with one river
`HalfSpaceTrees` shared by every key, through a `stateful_map` whose state it ignores. Its
results are wrong under several workers (that is why this project exists); only its cost matters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.outputs import Sink
from river import anomaly, preprocessing, stats

FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")


class _OnePerBatch(StatelessSourcePartition[str]):
    def __init__(self, rows: Iterator[str]):
        self._rows = rows

    def next_batch(self) -> list[str]:
        return [next(self._rows)]  # StopIteration ends the input, as in the example


class RowsSource(DynamicSource[str]):
    """Every row of a JSON-lines poll file as one JSON object string, one per batch, worker 0."""

    def __init__(self, path: str):
        self.path = path

    def _rows(self) -> Iterator[str]:
        with open(self.path) as fh:
            for line in fh:
                doc = json.loads(line)
                for row in doc["data"]:
                    yield json.dumps(dict(zip(doc["fields"], row, strict=True)))

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _OnePerBatch:
        return _OnePerBatch(self._rows() if worker_index == 0 else iter(()))


class _Example:
    """The example's process-wide imputers and detector (its module-level globals)."""

    def __init__(self):
        self.imputers = {f: preprocessing.StatImputer((f, stats.Mean())) for f in FIELDS}
        self.detector = anomaly.HalfSpaceTrees(
            n_trees=10, height=8, window_size=72, limits={"pm1.0_cf_1": (0, 1200)}, seed=11
        )

    def deserialize(self, line: str) -> dict:
        data = json.loads(line)
        for name, imputer in self.imputers.items():
            x = {name: data.get(name)}
            imputer.learn_one(x)
            data[name] = imputer.transform_one(x)[name]
        return data

    def update(self, _state, data: dict):
        x = {"pm1.0_cf_1": data["pm1.0_cf_1"]}
        score = self.detector.score_one(x)
        self.detector.learn_one(x)
        return None, (data, score)


def build_flow(path: str, sink: Sink) -> Dataflow:
    """The baseline flow over a poll file, anomalies (score > 0.7) to `sink`."""
    example = _Example()
    flow = Dataflow("baseline")
    rows = op.input("read", flow, RowsSource(path))
    parsed = op.map("deserialize", rows, example.deserialize)
    keyed = op.key_on("key", parsed, lambda d: str(d["sensor_index"]))
    scored = op.stateful_map("detect", keyed, example.update)
    anomalies = op.filter("keep", scored, lambda kv: kv[1][1] > 0.7)
    op.output("out", anomalies, sink)
    return flow
