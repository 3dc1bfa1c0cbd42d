"""Every detector on real labelled streams (NAB's development files), the simulator and WaterFlow.

    python -m evaluation.nab_bench            # every table (UCR is the long part: see below)
    python -m evaluation.nab_bench --quick    # fewer detectors, no fresh simulation
    python -m evaluation.nab_bench --ucr-every 4 --detectors ranked ranked_shape  # develop

For each detector of `detectors.catalog` and the one-line baseline (`evaluation.baselines`, with
and without a 100-reading hold-off), one configuration for every series, each series scored one
reading at a time, score before learning (`evaluation.detectors.score_series`):

- **NAB** on `../shared/data/nab-dev` (31 real and artificial series, `evaluation.datasets`),
  scored by NAB's rules (`evaluation.nab`: probation, windows, sigmoid) in its three profiles,
  at the detector's own threshold and at the best threshold for the corpus (NAB's own protocol:
  one threshold per detector and profile, chosen in hindsight);
- **generalisation**: the threshold picked on half of NAB's groups and scored on the other half
  (both ways), so a score that holds only where it was tuned shows;
- **the simulator and WaterFlow** (`evaluation.detectors.evaluate_detector`): precision, recall
  and NAB at the detector's own threshold;
- **UCR** (`evaluation.ucr`): the archive's development half, the KDD Cup rule (the row of the
  highest score after the training part, within 100 rows of the anomaly), with each detector's
  CPU time per reading and pickled state per key (6.1 million readings per detector: about
  10 µs a reading for `ranked`; `--ucr-every n` runs every n-th series, to develop);
- **the real PurpleAir history** (`evaluation.history_alerts`): score-only alarms per sensor.

The baseline's hold-off depends on the threshold, so it is evaluated at each of a grid of
thresholds with its hold-off applied there (which favours it). NAB's published Standard scores
(all 58 files, several with look-ahead) are printed beside, for scale.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.base import Detector
from detectors.catalog import DETECTORS, alarm_threshold, make_detector
from evaluation.baselines import ChangeRankBaseline
from evaluation.datasets import (
    NAB_DEV,
    NabFile,
    fresh_simulation,
    nab_files,
    shipped_simulation,
    water_flow,
)
from evaluation.detectors import Result, evaluate_detector, markdown_table, score_series
from evaluation.history_alerts import AJL_DEV, alert_table, history
from evaluation.nab import PROFILES, KeyTerms, candidates, key_terms, nab_curve, probation
from evaluation.ucr import BASELINES, UCR_DEV, evaluate_ucr, ucr_files, ucr_table

#: NAB v1.1's scoreboard, Standard profile, all 58 files (numenta/NAB README).
PUBLISHED = {
    "ARTime": 74.9,
    "HTM": 70.5,
    "CAD OSE": 69.9,
    "Skyline": 58.2,
    "KNN CAD": 58.0,
    "Relative Entropy": 54.6,
    "Random Cut Forest": 51.7,
    "Windowed Gaussian": 39.6,
    "random": 11.0,
    "null": 0.0,
}
BASELINE = "change_rank"
HOLDOFF = 100


@dataclass
class NabResult:
    detector: str
    threshold: float  # the detector's own
    at_default: list[float]  # per profile
    best: list[tuple[float, float]]  # per profile: (score, threshold)
    split: list[tuple[float, float]]  # per half: (score on the other half, threshold picked)


def factory(name: str) -> Callable[[], Detector]:
    if name in (BASELINE, BASELINE + "_holdoff"):
        return lambda: ChangeRankBaseline("value")
    return lambda: make_detector(name, "value")


def file_terms(files: Sequence[NabFile], scores: Sequence[np.ndarray]) -> list[KeyTerms]:
    return [
        key_terms(range(len(f.values)), s, f.windows, probation(len(f.values)))
        for f, s in zip(files, scores, strict=True)
    ]


def held_off(scores: np.ndarray, threshold: float, holdoff: int) -> np.ndarray:
    """1 at each alarm (score > threshold) not within `holdoff` readings after the last one."""
    alarms = np.zeros(len(scores))
    last = -holdoff - 1
    for i in np.flatnonzero(scores > threshold).tolist():
        if i - last > holdoff:
            alarms[i] = 1.0
            last = i
    return alarms


def holdoff_curve(
    files: Sequence[NabFile], scores: Sequence[np.ndarray], grid: np.ndarray, profile
) -> np.ndarray:
    """NAB score at each threshold of `grid`, with a hold-off of HOLDOFF after every alarm."""
    out = []
    for threshold in grid:
        alarms = [held_off(s, threshold, HOLDOFF) for s in scores]
        out.append(nab_curve(file_terms(files, alarms), [0.5], profile)[0])
    return np.array(out)


def groups_halves(files: Sequence[NabFile]) -> tuple[list[int], list[int]]:
    """File indexes of every other NAB group (sorted by name), and of the rest."""
    groups = sorted({f.group for f in files})
    first = set(groups[0::2])
    a = [i for i, f in enumerate(files) if f.group in first]
    return a, [i for i in range(len(files)) if i not in set(a)]


def evaluate_nab(name: str, files: Sequence[NabFile]) -> NabResult:
    make = factory(name)
    scores, threshold = [], alarm_threshold(make())
    for f in files:
        s, _threshold = score_series(make, f.values)
        scores.append(s)
    if name.endswith("_holdoff"):
        grid = np.unique(
            np.quantile(
                np.concatenate(scores)[np.isfinite(np.concatenate(scores))],
                1.0 - np.logspace(-1.5, -5, 60),
            )
        )

        def curve(idx, profile):
            return holdoff_curve([files[i] for i in idx], [scores[i] for i in idx], grid, profile)

        at_default = list(
            curve(range(len(files)), p)[np.searchsorted(grid, threshold) - 1] for p in PROFILES
        )
    else:
        grid = np.unique(np.concatenate([candidates(scores), [threshold]]))

        def curve(idx, profile):
            return nab_curve(
                file_terms([files[i] for i in idx], [scores[i] for i in idx]), grid, profile
            )

        terms = file_terms(files, scores)
        at_default = [float(nab_curve(terms, [threshold], p)[0]) for p in PROFILES]
    everything = range(len(files))
    bests = []
    for p in PROFILES:
        c = curve(everything, p)
        i = int(np.argmax(c))
        bests.append((float(c[i]), float(grid[i])))
    split = []
    halves = groups_halves(files)
    for pick, judge in (halves, halves[::-1]):
        i = int(np.argmax(curve(pick, PROFILES[0])))
        split.append((float(curve(judge, PROFILES[0])[i]), float(grid[i])))
    return NabResult(name, threshold, at_default, bests, split)


#: The knobs of `ranked` chosen while developing it on these files, and values around them:
#: the generalisation check picks them again on one half of the groups.
KNOBS = {
    "combine": ("consensus", "max"),
    "holdoff": (50, 100, 200),
    "threshold": (0.997, 0.998, 0.999, 0.9995, 0.9997),
}


def knob_split(files: Sequence[NabFile]) -> list[str]:
    """`ranked` with every combination of KNOBS (each at its own threshold: the hold-off follows
    it): the best on one half of the groups, scored on the other, both ways (Standard)."""
    import itertools

    from detectors.ranked import RankedTestsDetector

    halves = groups_halves(files)
    results = []
    for values in itertools.product(*KNOBS.values()):
        knobs = dict(zip(KNOBS, values, strict=True))
        make = functools.partial(RankedTestsDetector, "value", **knobs)
        scores = [score_series(make, f.values)[0] for f in files]
        per_half = [
            float(
                nab_curve(
                    file_terms([files[i] for i in h], [scores[i] for i in h]), [knobs["threshold"]]
                )[0]
            )
            for h in halves
        ]
        results.append((knobs, per_half))
    lines = []
    for pick, judge, name in ((0, 1, "A → B"), (1, 0, "B → A")):
        knobs, per_half = max(results, key=lambda r: r[1][pick])
        lines.append(
            f"- knobs picked on half {name[0]} ({per_half[pick]:.1f} there): {knobs}; "
            f"on half {name[-1]}: **{per_half[judge]:.1f}**"
        )
    default = next(
        r
        for r in results
        if r[0]
        == {"combine": "consensus", "holdoff": 100, "threshold": RankedTestsDetector.threshold}
    )
    lines.append(f"- the defaults on half A: {default[1][0]:.1f}, on half B: {default[1][1]:.1f}")
    return lines


def nab_table(results: Sequence[NabResult]) -> str:
    short = {"standard": "Standard", "reward_low_FP": "low FP", "reward_low_FN": "low FN"}
    names = [short[p.name] for p in PROFILES]
    lines = [
        "| detector | own threshold | "
        + " | ".join(f"{n} at it" for n in names)
        + " | "
        + " | ".join(f"{n}, best (threshold)" for n in names)
        + " | Standard, threshold from half A → on B | from B → on A |",
        "|---" * (2 + 2 * len(names) + 2) + "|",
    ]
    for r in results:
        cells = [r.detector, f"{r.threshold:.5g}"]
        cells += [f"{v:.1f}" for v in r.at_default]
        cells += [f"{v:.1f} ({t:.5g})" for v, t in r.best]
        cells += [f"{v:.1f} ({t:.5g})" for v, t in r.split]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ranked, zscore and the baseline only")
    parser.add_argument("--detectors", nargs="*", choices=DETECTORS,
                        help="these detectors only (default: all; --quick: ranked, zscore)")
    parser.add_argument("--nab", default=str(NAB_DEV), help="the NAB folder")
    parser.add_argument("--ucr", default=str(UCR_DEV), help="the UCR development folder")
    parser.add_argument("--ucr-every", type=int, default=1, help="every n-th UCR series only")
    parser.add_argument("--ucr-detectors", nargs="*", choices=[*DETECTORS, "shape", *BASELINES],
                        help="detectors run on UCR (default: all, and the baselines)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for UCR")
    parser.add_argument("--no-history", action="store_true", help="skip the PurpleAir history")
    args = parser.parse_args(argv)
    detectors = ["ranked", "zscore"] if args.quick else list(DETECTORS)
    if args.detectors is not None:
        detectors = args.detectors
    baselines = [BASELINE, BASELINE + "_holdoff"]
    files = nab_files(args.nab)
    halves = groups_halves(files)
    print(
        f"## NAB development files ({len(files)} series, "
        f"{sum(len(f.windows) for f in files)} windows)\n"
    )
    print("half A: " + ", ".join(sorted({files[i].group for i in halves[0]})) + "\n")
    print(nab_table([evaluate_nab(d, files) for d in [*detectors, *baselines]]))
    if not args.quick:
        print(
            "\n`ranked`'s knobs ("
            + ", ".join(f"{k} {v}" for k, v in KNOBS.items())
            + ") picked on one half of the groups, Standard profile:\n"
        )
        print("\n".join(knob_split(files)))
    print(
        "\nPublished (Standard, all 58 files): "
        + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items())
        + "\n"
    )
    data_sets = [shipped_simulation()]
    if not args.quick:
        data_sets.append(fresh_simulation())
    data_sets.append(water_flow())
    results: list[Result] = [evaluate_detector(d, data) for data in data_sets for d in detectors]
    print("## Simulator and WaterFlow (at each detector's own threshold)\n")
    print(markdown_table(results))
    ucr = args.ucr_detectors if args.ucr_detectors is not None else [*detectors, *BASELINES]
    if ucr and args.ucr_every > 0:
        files = ucr_files(args.ucr, args.ucr_every)
        note = "" if args.ucr_every == 1 else f"; every {args.ucr_every}th series only"
        print(f"\n## UCR development half ({len(files)} series{note})\n")
        print(ucr_table(evaluate_ucr(ucr, files, args.jobs)))
    if Path(AJL_DEV).exists() and not args.no_history:
        print("\n## Real PurpleAir history: score-only alarms (unlabelled)\n")
        print(alert_table(detectors, history(AJL_DEV)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
