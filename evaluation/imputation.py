"""Imputation quality by masking: hide observed values, impute them, compare with the truth.

The protocol, on a table of readings (rows × numeric columns, NaN = missing):

1. pick cells that were observed and hide them (set them to NaN), by *scenario*: `random` rows,
   or `runs` of consecutive readings of one series (a sensor's outage). Fields that fail together
   in real sensors are hidden together: the weather fields (one BME280 chip), all PM channels;
2. give the masked table to each *method*, which returns the table with what it could fill;
3. score each evaluated field on the hidden cells: MAE and RMSE over the cells the method filled,
   and coverage (filled / hidden), so a method cannot look good by declining hard cells unseen.

Streaming methods see the rows of each series in order and learn only from the past; the delayed
linear interpolation waits for the end of each gap; batch KNN sees the whole table, the future
included. Originally missing cells are never scored (there is no truth for them).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core.readings import Reading
from imputers.ewma import EWMAImputer
from imputers.interpolate import LinearGapImputer
from imputers.knn import BatchKNNImputer
from imputers.running import RunningMeanImputer
from imputers.spatial import SpatialImputer
from imputers.window import WindowImputer

WEATHER = ("humidity", "temperature", "pressure")
#: The flow's imputed fields: what is scored by default.
FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")


@dataclass
class Table:
    """Readings as arrays: values (rows × columns, NaN = missing), series id and time per row.

    Rows are in arrival order; `series` says which rows form one stream (a sensor's, or a single
    0 for a one-moment cross-section read in file order)."""

    name: str
    columns: list[str]
    values: np.ndarray
    series: np.ndarray
    times: np.ndarray

    def column(self, name: str) -> int:
        return self.columns.index(name)


def table_from_readings(
    name: str,
    readings: Sequence[Reading],
    *,
    key: str = "sensor",
    columns: Sequence[str] | None = None,
) -> Table:
    """A `Table` of readings; `key="global"` makes them one series in file order."""
    if columns is None:
        seen: dict[str, None] = {}
        for r in readings:
            for c, v in r.values.items():
                if v is not None:
                    seen.setdefault(c)
        columns = list(seen)
    values = np.full((len(readings), len(columns)), np.nan)
    for i, r in enumerate(readings):
        for j, c in enumerate(columns):
            v = r.values.get(c)
            if v is not None:
                values[i, j] = v
    series = np.array([r.sensor_index if key == "sensor" else 0 for r in readings], dtype=np.int64)
    times = np.array([r.time for r in readings], dtype=np.int64)
    return Table(name, list(columns), values, series, times)


def field_groups(columns: Sequence[str]) -> list[tuple[str, ...]]:
    """Columns that fail together: the weather fields, and all PM channels."""
    weather = tuple(c for c in WEATHER if c in columns)
    pm = tuple(c for c in columns if c.startswith("pm"))
    return [g for g in (weather, pm) if g]


@dataclass(frozen=True)
class Scenario:
    """How cells are hidden: `random` rows, or `runs` of `run_length` consecutive readings."""

    name: str
    kind: str = "random"
    fraction: float = 0.05
    run_length: int = 10

    def __post_init__(self) -> None:
        if self.kind not in ("random", "runs"):
            raise ValueError(f"scenario kind must be 'random' or 'runs', got {self.kind!r}")
        if not 0.0 < self.fraction < 1.0 or self.run_length < 1:
            raise ValueError("need 0 < fraction < 1 and run_length >= 1")


def mask_random(eligible: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Hide `round(fraction · eligible)` eligible rows chosen uniformly (boolean row mask)."""
    candidates = np.flatnonzero(eligible)
    n = int(round(fraction * len(candidates)))
    hidden = np.zeros(len(eligible), dtype=bool)
    hidden[rng.choice(candidates, size=n, replace=False)] = True
    return hidden


def mask_runs(
    eligible: np.ndarray,
    series: np.ndarray,
    fraction: float,
    run_length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Hide runs of `run_length` consecutive rows of one series, starting at random eligible rows,
    until about `fraction` of the eligible rows are hidden (runs may overlap or be cut short by
    the end of a series; only eligible rows are ever hidden)."""
    hidden = np.zeros(len(eligible), dtype=bool)
    target = int(round(fraction * eligible.sum()))
    order = np.argsort(series, kind="stable")  # rows of each series, in arrival order
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    starts = rng.permutation(np.flatnonzero(eligible))
    for start in starts:
        if hidden.sum() >= target:
            break
        at = position[start]
        run = order[at : at + run_length]
        run = run[series[run] == series[start]]
        hidden[run[eligible[run]]] = True
    return hidden


def hide(
    table: Table,
    scenario: Scenario,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Cells to hide (rows × columns): each field group is masked on the rows where it was
    fully observed, except `exclude`d rows (e.g. labelled faults, whose values are not the
    signal an imputer should reproduce)."""
    hidden = np.zeros(table.values.shape, dtype=bool)
    for group in field_groups(table.columns):
        cols = [table.column(c) for c in group]
        eligible = ~np.isnan(table.values[:, cols]).any(axis=1)
        if exclude is not None:
            eligible &= ~exclude
        if scenario.kind == "random":
            rows = mask_random(eligible, scenario.fraction, rng)
        else:
            rows = mask_runs(eligible, table.series, scenario.fraction, scenario.run_length, rng)
        hidden[np.ix_(rows, cols)] = True
    return hidden


@dataclass(frozen=True)
class Score:
    """One field's error on the hidden cells a method filled."""

    field: str
    hidden: int
    filled: int
    mae: float
    rmse: float

    @property
    def coverage(self) -> float:
        return self.filled / self.hidden if self.hidden else 0.0


def score(
    truth: np.ndarray, filled: np.ndarray, hidden: np.ndarray, columns: Sequence[str]
) -> list[Score]:
    """MAE and RMSE per column over the hidden cells that `filled` holds a value for."""
    scores = []
    for j, name in enumerate(columns):
        rows = hidden[:, j]
        got = filled[rows, j]
        ok = ~np.isnan(got)
        error = got[ok] - truth[rows, j][ok]
        mae = float(np.mean(np.abs(error))) if error.size else float("nan")
        rmse = float(np.sqrt(np.mean(error**2))) if error.size else float("nan")
        scores.append(Score(name, int(rows.sum()), int(ok.sum()), mae, rmse))
    return scores


#: A method takes the masked table and returns its values with what it could fill.
Method = Callable[[Table], np.ndarray]


class StreamImputer(Protocol):
    def impute_one(self, values: Mapping[str, float | None]) -> tuple[dict, list, list]: ...


def _row_dicts(table: Table) -> list[dict[str, float | None]]:
    cols = table.columns
    return [
        {c: (None if v != v else float(v)) for c, v in zip(cols, row, strict=True)}
        for row in table.values.tolist()
    ]


def _write(out: np.ndarray, i: int, values: Mapping[str, Any], index: Mapping[str, int]) -> None:
    for name, j in index.items():
        v = values.get(name)
        if v is not None:
            out[i, j] = v


@dataclass
class Streaming:
    """A streaming imputer per series, fed the rows of its series in arrival order; `shared`: one
    imputer for all rows in arrival order (a spatial method needs the other sensors)."""

    factory: Callable[[Sequence[str]], StreamImputer]
    fields: Sequence[str] = FIELDS
    shared: bool = False

    def __call__(self, table: Table) -> np.ndarray:
        out = table.values.copy()
        index = {f: table.column(f) for f in self.fields if f in table.columns}
        keys = [0] * len(table.values) if self.shared else table.series.tolist()
        imputers: dict[int, StreamImputer] = {}
        for i, (key, values) in enumerate(zip(keys, _row_dicts(table), strict=True)):
            imp = imputers.get(key)
            if imp is None:
                imp = imputers[key] = self.factory(tuple(index))
            filled, _imputed, _missing = imp.impute_one(values)
            _write(out, i, filled, index)
        return out


@dataclass
class Delayed:
    """`LinearGapImputer` per series; a row's answer is written when the imputer releases it.
    `delays` collects, per row, the event-time wait (s) from the row to its release (0 for a row
    released at once; a row queued behind a gap waits with it)."""

    fields: Sequence[str] = FIELDS
    max_delay: int = 60
    delays: list[float] = field(default_factory=list)

    def __call__(self, table: Table) -> np.ndarray:
        out = table.values.copy()
        index = {f: table.column(f) for f in self.fields if f in table.columns}
        imputers: dict[int, LinearGapImputer] = {}
        waiting: dict[int, deque[int]] = {}
        self.delays = []
        times = table.times.tolist()
        rows = zip(table.series.tolist(), _row_dicts(table), strict=True)
        for i, (sid, values) in enumerate(rows):
            if sid not in imputers:
                imputers[sid] = LinearGapImputer(tuple(index), self.max_delay)
                waiting[sid] = deque()
            waiting[sid].append(i)
            released = imputers[sid].impute_one(values, time=times[i])
            self._take(out, released, waiting[sid], index, times, times[i])
        for sid, imp in imputers.items():
            last = times[waiting[sid][-1]] if waiting[sid] else 0
            self._take(out, imp.flush(), waiting[sid], index, times, last)
        return out

    def _take(self, out, released, rows, index, times, now) -> None:
        for filled, _imputed, _missing in released:
            i = rows.popleft()
            _write(out, i, filled, index)
            self.delays.append(now - times[i])


@dataclass
class BatchKNN:
    """`BatchKNNImputer` over all numeric columns of the whole masked table; `with_time` adds the
    event time as one more column (so neighbours can be the same sensor's earlier and later
    readings, the future included)."""

    n_neighbors: int = 5
    scale: bool = False
    with_time: bool = False

    def __call__(self, table: Table) -> np.ndarray:
        X = table.values
        if self.with_time:
            X = np.column_stack([X, table.times.astype(float)])
        filled = BatchKNNImputer(self.n_neighbors, scale=self.scale).fit_transform(X)
        return filled[:, : table.values.shape[1]]


def default_methods(
    fields: Sequence[str] = FIELDS, *, window: int = 10, alpha: float = 0.3, k: int = 5
) -> dict[str, Method]:
    """The methods compared in the report, by display name."""
    return {
        "window mean": Streaming(lambda f: WindowImputer(f, window, "mean"), fields),
        "window median": Streaming(lambda f: WindowImputer(f, window, "median"), fields),
        "last value": Streaming(lambda f: WindowImputer(f, 1, "last"), fields),
        "EWMA": Streaming(lambda f: EWMAImputer(f, alpha), fields),
        "running mean (river)": Streaming(RunningMeanImputer, fields),
        "linear (delayed)": Delayed(fields),
        "spatial kNN": Streaming(lambda f: SpatialImputer(f, k), fields, shared=True),
        "batch KNN": BatchKNN(k),
        "batch KNN (scaled, +time)": BatchKNN(k, scale=True, with_time=True),
    }


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    dataset: str
    scenario: str
    method: str
    field: str
    hidden: int
    filled: int
    mae: float
    rmse: float
    seconds: float  # the method's wall time on the whole masked table


def evaluate(
    table: Table,
    methods: Mapping[str, Method],
    scenarios: Sequence[Scenario],
    *,
    fields: Sequence[str] = FIELDS,
    seed: int = 0,
    exclude: np.ndarray | None = None,
) -> list[Row]:
    """Run every method on every scenario's masked copy of the table; score the fields.

    Each scenario draws its mask from `numpy.random.default_rng([seed, scenario number])`, so
    every method sees the same hidden cells and runs are reproducible; `exclude`d rows are
    never hidden."""
    fields = [f for f in fields if f in table.columns]
    cols = [table.column(f) for f in fields]
    rows: list[Row] = []
    for n, scenario in enumerate(scenarios):
        hidden = hide(table, scenario, np.random.default_rng([seed, n]), exclude)
        masked = Table(
            table.name,
            table.columns,
            np.where(hidden, np.nan, table.values),
            table.series,
            table.times,
        )
        for name, method in methods.items():
            clock = time.perf_counter()
            filled = method(masked)
            seconds = time.perf_counter() - clock
            for s in score(table.values[:, cols], filled[:, cols], hidden[:, cols], fields):
                rows.append(
                    Row(
                        table.name,
                        scenario.name,
                        name,
                        s.field,
                        s.hidden,
                        s.filled,
                        s.mae,
                        s.rmse,
                        seconds,
                    )
                )
    return rows
