"""Detectors on the UCR anomaly archive's development half: accuracy, cost per reading, memory.

    python -m evaluation.ucr                       # every detector, all 132 series (slow)
    python -m evaluation.ucr --detectors ranked ranked_shape --every 4   # a quarter: develop

Each series (`../shared/data/ucr-dev`, one value a line, `NNN_UCR_Anomaly_NAME_TRAIN_BEGIN_END`)
is scored one reading at a time from row 1, score before learning, as `evaluation.detectors`
scores any series. The KDD Cup 2021 rule (the folder's README): the detector names one location
after the training part, correct when it lies in [BEGIN − 100, END + 100]. Here that location is
the row of its highest score (ties: the earliest), less the lag the detector reports there: a
streaming shape test knows a subsequence is unusual only once it ends, and names its centre
(`detector.lag`, as DAMP names its discord's place; 0 for the single-value tests). The
detector's threshold plays no part; its hold-off does (a held score is lowered), as in the flow.

Alongside accuracy: CPU seconds per reading (process time, imputation included) and the
detector's pickled size after the longest series (its state per key: bounded when it does not
grow with the series). Series are spread over `--jobs` processes.
"""

from __future__ import annotations

import argparse
import pickle
import re
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.catalog import DETECTORS, EXPERIMENTS, make_detector
from evaluation.baselines import AbsoluteChangeBaseline, ChangeRankBaseline
from evaluation.detectors import FEATURE, score_series

UCR_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ucr-dev"
NAME = re.compile(r"^(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.txt$")
#: The KDD Cup's slack around the labelled anomaly, in rows.
SLACK = 100
#: The one-line baselines: |x_t − x_(t−1)| ranked among the key's past changes, and itself.
BASELINES = {"change_rank": ChangeRankBaseline, "abs_change": AbsoluteChangeBaseline}


@dataclass(frozen=True)
class UcrFile:
    path: Path
    name: str
    train: int  # rows 1..train are the training part
    begin: int  # the anomaly's rows, 1-based, inclusive
    end: int


def ucr_files(folder: str | Path = UCR_DEV, every: int = 1) -> list[UcrFile]:
    """The series of `folder` in name order (every `every`-th one, to develop on a subset)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"UCR folder not found: {folder}")
    files = []
    for path in sorted(folder.glob("*.txt")):
        match = NAME.match(path.name)
        if match is None:
            continue
        number, name, train, begin, end = match.groups()
        files.append(UcrFile(path, f"{number}_{name}", int(train), int(begin), int(end)))
    return files[::every]


def load(file: UcrFile) -> np.ndarray:
    """The series' values (the archive has a few files with several values a line: all kept)."""
    return np.array(file.path.read_text().split(), dtype=float)


def located(scores: np.ndarray, train: int, lags: np.ndarray | None = None) -> int:
    """The 1-based row the detector names at its highest score after the training part (the
    earliest of ties): that reading's row, less the lag it reported (where the unusual
    subsequence it scored lies), never before the test part."""
    i = train + int(np.argmax(scores[train:]))
    lag = 0 if lags is None else int(lags[i])
    return max(i + 1 - lag, train + 1)


def correct(file: UcrFile, row: int) -> bool:
    """The KDD Cup rule: the named row lies within SLACK rows of the labelled anomaly."""
    return file.begin - SLACK <= row <= file.end + SLACK


def make(name: str):
    """A fresh detector of catalogue kind `name` (or the one-line baseline)."""
    if name in BASELINES:
        return BASELINES[name](FEATURE)
    return make_detector(name, FEATURE)


def run_one(args: tuple[str, UcrFile]) -> tuple[str, str, int, bool, int, float, int]:
    """(detector, series, row named, correct, readings, CPU seconds, pickled bytes after)."""
    name, file = args
    values = load(file)
    last = []

    def fresh():
        last.append(make(name))
        return last[-1]

    lags = np.zeros(len(values), dtype=np.int64)
    start = time.process_time()
    scores, _threshold = score_series(fresh, values.tolist(), lags)
    cpu = time.process_time() - start
    row = located(scores, file.train, lags)
    return name, file.name, row, correct(file, row), len(values), cpu, len(pickle.dumps(last[-1]))


@dataclass
class UcrResult:
    detector: str
    found: int
    series: int
    readings: int
    cpu: float
    memory: int  # bytes, the largest pickled state after a series
    rows: dict[str, tuple[int, bool]]

    @property
    def accuracy(self) -> float:
        return self.found / self.series

    @property
    def per_reading(self) -> float:
        return self.cpu / self.readings


def evaluate_ucr(
    detectors: Sequence[str], files: Sequence[UcrFile], jobs: int = 2
) -> list[UcrResult]:
    """Every detector on every series (longest first, spread over `jobs` processes)."""
    order = sorted(files, key=lambda f: -f.path.stat().st_size)
    tasks = [(d, f) for f in order for d in detectors]
    results = {d: UcrResult(d, 0, 0, 0, 0.0, 0, {}) for d in detectors}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(run_one, tasks, chunksize=1))
    else:
        done = [run_one(t) for t in tasks]
    for name, series, row, ok, n, cpu, size in done:
        r = results[name]
        r.found += ok
        r.series += 1
        r.readings += n
        r.cpu += cpu
        r.memory = max(r.memory, size)
        r.rows[series] = (row, ok)
    return [results[d] for d in detectors]


def ucr_table(results: Sequence[UcrResult]) -> str:
    lines = [
        "| detector | UCR dev found | accuracy | µs CPU per reading | state per key (pickled) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.detector} | {r.found}/{r.series} | {100 * r.accuracy:.1f} % "
            f"| {1e6 * r.per_reading:.1f} | {r.memory / 1024:.1f} kB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ucr", default=str(UCR_DEV), help="the UCR development folder")
    parser.add_argument("--detectors", nargs="*", default=[*DETECTORS, *BASELINES],
                        choices=[*DETECTORS, *EXPERIMENTS, *BASELINES])
    parser.add_argument("--every", type=int, default=1, help="every n-th series only (develop)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rows", action="store_true", help="print each series' named row")
    args = parser.parse_args(argv)
    files = ucr_files(args.ucr, args.every)
    start = time.time()
    results = evaluate_ucr(args.detectors, files, args.jobs)
    note = "" if args.every == 1 else f", every {args.every}th series only"
    print(f"## UCR development half ({len(files)} series{note}; {time.time() - start:.0f} s)\n")
    print(ucr_table(results))
    if args.rows:
        for r in results:
            print(f"\n{r.detector}: " + ", ".join(f"{k} {v[0]}{'' if v[1] else ' ✗'}"
                                                 for k, v in sorted(r.rows.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
