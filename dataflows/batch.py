"""The batch path: the same data and detector as the flow, but KNN imputation over the whole table.

    python -m dataflows.batch                # data/polls.jsonl, anomalies to stdout
    python -m dataflows.batch ../shared/data/purpleair_snapshot.json --key global --output a.jsonl

Parse every row (the flow's parser: same readings, same dead letters) → one table of all numeric
fields → `BatchKNNImputer` (scikit-learn `KNNImputer`, 5 neighbours, all numeric columns, as in the
example this project grows from) → the flow's `HalfSpaceTreesDetector`, per sensor (or global) in
file order, scored before it learns → anomalies in the flow's JSON-lines format.

The difference from the stream is the point: KNN fills a gap from any row of the table, later ones
included, and nothing can be answered before the last row has arrived.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.json_lines import to_line
from core.readings import DeadLetter, Reading
from dataflows.air_quality import KEY_MODES, SHIPPED_DATA
from dataflows.steps import anomaly_record, dead_letter_record, is_anomaly
from detectors.hst import DEFAULT_FEATURES, HalfSpaceTreesDetector
from imputers.knn import BatchKNNImputer
from sources.purpleair import read_items


@dataclass
class BatchResult:
    """Everything a batch run produced, with the wall time of each phase in seconds."""

    readings: list[Reading]  # cleaned and scored, in file order
    anomalies: list[dict[str, Any]]  # anomaly records, in file order
    dead_letters: list[DeadLetter]
    columns: list[str]  # the numeric columns KNN imputed over
    seconds: dict[str, float] = field(default_factory=dict)  # parse, impute, score


def load(location: str | Path) -> tuple[list[Reading], list[DeadLetter]]:
    """All readings and dead letters of a payload file or URL, in file order."""
    readings: list[Reading] = []
    dead: list[DeadLetter] = []
    for item in read_items(str(location)):
        (readings if isinstance(item, Reading) else dead).append(item)
    return readings, dead


def numeric_columns(readings: Sequence[Reading]) -> list[str]:
    """The numeric fields observed at least once, in the order they first appear."""
    seen: dict[str, None] = {}
    for reading in readings:
        for name, value in reading.values.items():
            if value is not None:
                seen.setdefault(name)
    return list(seen)


def to_matrix(readings: Sequence[Reading], columns: Sequence[str]) -> np.ndarray:
    """Readings as a float table (rows × columns), NaN where a value is missing or absent."""
    table = np.full((len(readings), len(columns)), np.nan)
    for i, reading in enumerate(readings):
        for j, name in enumerate(columns):
            value = reading.values.get(name)
            if value is not None:
                table[i, j] = value
    return table


def knn_impute(
    readings: Sequence[Reading],
    columns: Sequence[str],
    n_neighbors: int = 5,
    scale: bool = False,
) -> list[Reading]:
    """Readings with every missing numeric value KNN-imputed from the whole table, flagged."""
    before = to_matrix(readings, columns)
    after = BatchKNNImputer(n_neighbors=n_neighbors, scale=scale).fit_transform(before)
    cleaned = []
    for i, reading in enumerate(readings):
        values = dict(reading.values)
        imputed, missing = [], []
        for j, name in enumerate(columns):
            if np.isnan(before[i, j]):
                if np.isnan(after[i, j]):
                    missing.append(name)
                else:
                    values[name] = float(after[i, j])
                    imputed.append(name)
        cleaned.append(replace(reading, values=values, imputed=imputed, missing=missing))
    return cleaned


def score_all(readings: Sequence[Reading], key: str = "sensor", **detector: Any) -> list[Reading]:
    """Score each reading with its key's `HalfSpaceTreesDetector` (score, then learn), as the
    flow does, in file order."""
    HalfSpaceTreesDetector(**detector)  # a bad configuration fails before any work
    detectors: dict[str, HalfSpaceTreesDetector] = {}
    scored = []
    for reading in readings:
        k = str(reading.sensor_index) if key == "sensor" else "global"
        if k not in detectors:
            detectors[k] = HalfSpaceTreesDetector(**detector)
        score, status = detectors[k].score_then_learn(reading.values)
        scored.append(replace(reading, score=score, status=status))
    return scored


def run_batch(
    source: str | Path = SHIPPED_DATA,
    *,
    key: str = "sensor",
    threshold: float = 0.7,
    n_neighbors: int = 5,
    scale: bool = False,
    columns: Sequence[str] | None = None,
    features: Sequence[str] = DEFAULT_FEATURES,
    limits: Mapping[str, tuple[float, float]] | None = None,
    n_trees: int = 10,
    height: int = 8,
    window_size: int = 72,
    seed: int = 11,
) -> BatchResult:
    """Parse, KNN-impute and score a whole source; options as in `build_flow`."""
    if key not in KEY_MODES:
        raise ValueError(f"key must be one of {KEY_MODES}, got {key!r}")
    clock = time.perf_counter()
    readings, dead = load(source)
    parsed = time.perf_counter()
    columns = list(columns) if columns is not None else numeric_columns(readings)
    cleaned = knn_impute(readings, columns, n_neighbors, scale)
    imputed = time.perf_counter()
    options = dict(n_trees=n_trees, height=height, window_size=window_size, seed=seed)
    scored = score_all(cleaned, key, features=features, limits=limits, **options)
    anomalies = [
        anomaly_record(r, tuple(features), threshold) for r in scored if is_anomaly(r, threshold)
    ]
    done = time.perf_counter()
    seconds = {"parse": parsed - clock, "impute": imputed - parsed, "score": done - imputed}
    return BatchResult(scored, anomalies, dead, columns, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=str(SHIPPED_DATA), help="payload file or URL")
    parser.add_argument("--key", choices=KEY_MODES, default="sensor")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--neighbors", type=int, default=5, help="KNN neighbours (default 5)")
    parser.add_argument("--scale", action="store_true", help="standardise columns for KNN")
    parser.add_argument("--output", help="anomalies file (appended); default stdout")
    parser.add_argument("--dead-letters", help="dead letters file (appended); default stderr")
    args = parser.parse_args(argv)
    result = run_batch(
        args.source,
        key=args.key,
        threshold=args.threshold,
        n_neighbors=args.neighbors,
        scale=args.scale,
    )
    lines = "".join(to_line(record) + "\n" for record in result.anomalies)
    letters = "".join(to_line(dead_letter_record(d)) + "\n" for d in result.dead_letters)
    _write(args.output, lines, sys.stdout)
    _write(args.dead_letters, letters, sys.stderr)
    phases = ", ".join(f"{k}={v:.2f}s" for k, v in result.seconds.items())
    print(
        f"batch: readings={len(result.readings)}, dead_letters={len(result.dead_letters)}, "
        f"anomalies={len(result.anomalies)}, {phases}",
        file=sys.stderr,
    )
    return 0


def _write(path: str | None, text: str, default: Any) -> None:
    if path is None:
        default.write(text)
    else:
        with Path(path).open("a") as fh:
            fh.write(text)


if __name__ == "__main__":
    sys.exit(main())
