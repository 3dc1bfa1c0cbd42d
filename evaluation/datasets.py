"""Labelled series for evaluating detectors: the simulator's sensors and a real series from river.

No package on PyPI ships a labelled public anomaly benchmark in its wheel: NAB, Yahoo S5,
TSB-UAD and UCR are downloaded at run time by the packages that use them (`tsb-ad`, `tsb-uad`,
`dtaianomaly`, `easytsad`, `timeeval`, `orion-ml` ship code only). The one real series with
documented anomalies that ships inside a wheel is river's `WaterFlow` (hourly water flow through
a pipeline branch, 1,268 values); its docstring names four anomalous segments, three "low value
moments" and a small pumping peak after the first two, without indexes. `water_flow()` marks
them by a rule written down here rather than by eye: a low segment is a maximal run of values
below 98 l/s (normal flow stays within 99–107 l/s), the peak is the series' maximum.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evaluation.detection import LABELS, Episode, load_labels

POLLS = LABELS.parent / "polls.jsonl"
PM = "pm1.0_cf_1"
WATER_LOW = 98.0  # l/s; every normal value of WaterFlow is above 99


@dataclass(frozen=True)
class Series:
    """One key's values in time order; `times` are what the episodes' start/end refer to."""

    key: int
    times: list[int]
    values: list[float | None]


@dataclass(frozen=True)
class LabelledData:
    name: str
    series: list[Series]
    episodes: list[Episode]


def series_of_polls(polls: Iterable[Mapping[str, Any]], feature: str = PM) -> list[Series]:
    """Per sensor, (last_seen, feature) of the simulator's payloads, in poll order."""
    times: dict[int, list[int]] = defaultdict(list)
    values: dict[int, list[float | None]] = defaultdict(list)
    for poll in polls:
        pos = {name: i for i, name in enumerate(poll["fields"])}
        for row in poll["data"]:
            sensor = row[pos["sensor_index"]]
            times[sensor].append(row[pos["last_seen"]])
            value = row[pos[feature]]
            values[sensor].append(None if value is None else float(value))
    return [Series(s, times[s], values[s]) for s in sorted(times)]


def shipped_simulation() -> LabelledData:
    """`data/polls.jsonl` (60 sensors, 24 h) and `data/labels.csv`."""
    with POLLS.open() as fh:
        polls = (json.loads(line) for line in fh if line.strip())
        series = series_of_polls(polls)
    return LabelledData("simulator, shipped (seed 7)", series, load_labels(LABELS))


def fresh_simulation(seed: int = 8, n_sensors: int = 60, hours: float = 24.0) -> LabelledData:
    """A simulation the detectors were not tuned on."""
    from data import simulate

    sim = simulate.generate(seed=seed, n_sensors=n_sensors, hours=hours)
    episodes = [Episode(lb.sensor_index, lb.fault, lb.start, lb.end) for lb in sim.labels]
    return LabelledData(f"simulator, fresh (seed {seed})", series_of_polls(sim.polls), episodes)


def label_water_flow(values: list[float]) -> list[Episode]:
    """Episodes (by index) of the WaterFlow series, by the rule in the module docstring.

    >>> label_water_flow([100.0, 50.0, 40.0, 101.0, 103.0, 99.5])
    [Episode(sensor_index=0, fault='low_flow', start=1, end=2), Episode(sensor_index=0, \
fault='peak', start=4, end=4)]
    """
    episodes = []
    start = None
    for i, v in enumerate([*values, WATER_LOW]):
        if v < WATER_LOW and start is None:
            start = i
        elif v >= WATER_LOW and start is not None:
            episodes.append(Episode(0, "low_flow", start, i - 1))
            start = None
    top = max(range(len(values)), key=values.__getitem__)
    episodes.append(Episode(0, "peak", top, top))
    return episodes


def water_flow() -> LabelledData:
    """river's WaterFlow, real measurements shipped in river's wheel."""
    from river import datasets

    values = [float(y) for _x, y in datasets.WaterFlow()]
    series = Series(0, list(range(len(values))), list(values))
    return LabelledData("river WaterFlow (real)", [series], label_water_flow(values))


#: NAB's development files (see its README), beside the repository as CI places them.
NAB_DEV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nab-dev"


@dataclass(frozen=True)
class NabFile:
    """One NAB series: its group (folder), name, values in time order and anomaly windows as
    inclusive (first, last) row indexes."""

    group: str
    name: str
    values: list[float]
    windows: list[tuple[int, int]]


def nab_files(root: str | Path = NAB_DEV) -> list[NabFile]:
    """Every file of a NAB folder (`data/<group>/<file>.csv` and `windows.json`), sorted by
    path. Window edges are timestamps of the file's rows; they become row indexes here."""
    root = Path(root)
    with (root / "windows.json").open() as fh:
        windows = json.load(fh)
    files = []
    for relative in sorted(windows):
        with (root / "data" / relative).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        stamps = [datetime.fromisoformat(r["timestamp"]) for r in rows]
        index = {t: i for i, t in enumerate(stamps)}
        spans = [
            (index[datetime.fromisoformat(a)], index[datetime.fromisoformat(b)])
            for a, b in windows[relative]
        ]
        group, name = relative.split("/", 1)
        files.append(NabFile(group, name, [float(r["value"]) for r in rows], sorted(spans)))
    return files
