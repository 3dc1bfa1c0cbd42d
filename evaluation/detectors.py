"""Every detector on every labelled data set: precision, recall and delay per fault, NAB score.

    python -m evaluation.detectors            # the simulator and WaterFlow (about a minute)
    python -m evaluation.detectors --quick    # shipped simulation and WaterFlow only

(`python -m evaluation.nab_bench` prints this table after NAB's: the README's tables.)

Each series is imputed (`WindowImputer`, mean of the last 10 observed values) and scored one
value at a time, score before learning, with the same detector settings on every data set. A
reading is an alarm when its score exceeds the detector's own threshold (`alarm_threshold`);
precision, recall and delays come from `evaluation.detection.evaluate`, and the NAB score from
`evaluation.nab`. "best NAB" is the best over all thresholds, chosen with hindsight: it says how
far a better threshold could go, and whether any threshold beats raising no alarm (0).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from detectors.base import Detector
from detectors.catalog import DETECTORS, alarm_threshold, make_detector
from evaluation.datasets import LabelledData, fresh_simulation, shipped_simulation, water_flow
from evaluation.detection import SILENT_FAULTS, Report, evaluate
from evaluation.nab import key_terms, nab_curve
from imputers.window import WindowImputer

FEATURE = "value"


def score_series(
    name: str | Callable[[], Detector],
    values: Sequence[float | None],
    lags: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Scores of one series (−inf where none) and the detector's alarm threshold; `name` is a
    catalogue name or a function that makes a fresh detector. With `lags`, each reading's
    `detector.lag` goes there: how many readings back its score's anomaly lies (a shape is
    known only once it ends; 0 for detectors that do not say)."""
    detector = make_detector(name, FEATURE) if isinstance(name, str) else name()
    imputer = WindowImputer([FEATURE], window=10)
    scores = np.full(len(values), -math.inf)
    for i, value in enumerate(values):
        filled, _imputed, _missing = imputer.impute_one({FEATURE: value})
        score, _status = detector.score_then_learn(filled)
        if score is not None:
            scores[i] = score
        if lags is not None:
            lags[i] = getattr(detector, "lag", 0)
    return scores, alarm_threshold(detector)


@dataclass
class Result:
    data: str
    detector: str
    threshold: float
    report: Report
    nab: float
    best_nab: float
    best_threshold: float


def evaluate_detector(name: str, data: LabelledData) -> Result:
    """Run one detector over every series of a data set and score it."""
    flags, terms, all_scores = [], [], []
    threshold = 0.0
    for series in data.series:
        scores, threshold = score_series(name, series.values)
        flags += [
            (series.key, t) for t, s in zip(series.times, scores, strict=True) if s > threshold
        ]
        windows = sorted(
            (e.start, e.end)
            for e in data.episodes
            if e.sensor_index == series.key and e.fault not in SILENT_FAULTS
        )
        terms.append(key_terms(series.times, scores, windows))
        all_scores.append(scores[np.isfinite(scores)])
    finite = np.concatenate(all_scores)
    if not len(finite):  # the detector never answered (too short a history for it)
        finite = np.array([threshold])
    candidates = np.unique(np.concatenate([np.quantile(finite, np.linspace(0, 1, 401)), finite]))
    if len(candidates) > 5000:
        candidates = np.unique(np.quantile(finite, np.linspace(0, 1, 5001)))
    candidates = np.concatenate([candidates, [threshold]])
    curve = nab_curve(terms, candidates)
    best = int(np.argmax(curve))
    return Result(
        data.name,
        name,
        threshold,
        evaluate(flags, data.episodes),
        float(curve[-1]),
        float(curve[best]),
        float(candidates[best]),
    )


def fault_cell(result: Result, unit: str) -> str:
    """`kind detected/episodes (median delay)` for each fault kind with readings."""
    cells = []
    for fault, s in result.report.per_fault.items():
        if fault in SILENT_FAULTS:
            continue
        delay = "–" if s.median_delay is None else f"{s.median_delay:.0f}{unit}"
        cells.append(f"{fault} {s.detected}/{s.episodes} ({delay})")
    return ", ".join(cells)


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| data set | detector | threshold | alarms | precision | recall | NAB | best NAB "
        "(threshold) | detected/episodes (median delay) per fault |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        unit = "h" if "WaterFlow" in r.data else "s"
        lines.append(
            f"| {r.data} | {r.detector} | {r.threshold:.4g} | {r.report.flags} "
            f"| {r.report.precision:.3f} | {r.report.recall:.3f} | {r.nab:.1f} "
            f"| {r.best_nab:.1f} ({r.best_threshold:.4g}) | {fault_cell(r, unit)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the fresh simulation")
    parser.add_argument("--detectors", nargs="*", default=list(DETECTORS), choices=DETECTORS)
    args = parser.parse_args(argv)
    data_sets = [shipped_simulation()]
    if not args.quick:
        data_sets.append(fresh_simulation())
    data_sets.append(water_flow())
    results = [evaluate_detector(d, data) for data in data_sets for d in args.detectors]
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
