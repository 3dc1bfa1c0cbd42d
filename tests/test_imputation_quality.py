"""The masking protocol: masks hide what they promise, scores equal numpy's, truth scores 0."""

from __future__ import annotations

import numpy as np
import pytest

from core.readings import Reading
from evaluation.imputation import (
    BatchKNN,
    Delayed,
    Scenario,
    Streaming,
    Table,
    default_methods,
    evaluate,
    field_groups,
    hide,
    mask_runs,
    score,
    table_from_readings,
)
from imputers.window import WindowImputer

COLUMNS = [
    "latitude",
    "longitude",
    "humidity",
    "temperature",
    "pressure",
    "pm1.0_cf_1",
    "pm2.5_cf_1",
]


def toy_table(n_sensors=4, n=120, seed=0) -> Table:
    """Smooth per-sensor series with a few originally missing values."""
    rng = np.random.default_rng(seed)
    rows, series, times = [], [], []
    for s in range(n_sensors):
        t = np.arange(n) * 120.0
        base = np.column_stack(
            [
                np.full(n, 37 + 0.1 * s),
                np.full(n, -122 + 0.1 * s),
                40 + 10 * np.sin(t / 9000) + rng.normal(0, 0.5, n),
                70 - 8 * np.sin(t / 9000) + rng.normal(0, 0.5, n),
                1010 + rng.normal(0, 0.1, n),
                5 + np.abs(rng.normal(0, 1, n)),
                7 + np.abs(rng.normal(0, 1, n)),
            ]
        )
        base[rng.random(n) < 0.03, 2:5] = np.nan
        rows.append(base)
        series += [100 + s] * n
        times += (1_000_000 + t).astype(int).tolist()
    values = np.vstack(rows)
    order = np.argsort(np.array(times), kind="stable")  # interleave sensors, as polls do
    return Table("toy", COLUMNS, values[order], np.array(series)[order], np.array(times)[order])


class Truth:
    """A 'method' that knows the original table: it returns the true values."""

    def __init__(self, table: Table):
        self.table = table

    def __call__(self, masked: Table) -> np.ndarray:
        return self.table.values.copy()


def test_a_method_returning_the_truth_scores_exactly_zero():
    table = toy_table()
    scenarios = [Scenario("random", "random", 0.1), Scenario("runs", "runs", 0.1, 5)]
    rows = evaluate(table, {"truth": Truth(table)}, scenarios, seed=3)
    assert {r.field for r in rows} == {"temperature", "humidity", "pressure", "pm1.0_cf_1"}
    for r in rows:
        assert r.hidden > 0 and r.filled == r.hidden
        assert r.mae == 0.0 and r.rmse == 0.0


def test_mae_and_rmse_equal_numpy_on_a_hand_made_case():
    truth = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    filled = np.array([[1.5, 10.0], [np.nan, 23.0], [1.0, 30.0], [4.0, 36.0]])
    hidden = np.array([[True, False], [True, True], [True, False], [False, True]])
    a, b = score(truth, filled, hidden, ["a", "b"])
    err_a = np.array([1.5 - 1.0, 1.0 - 3.0])  # row 1 hidden but not filled: not scored
    err_b = np.array([23.0 - 20.0, 36.0 - 40.0])
    assert (a.hidden, a.filled, b.hidden, b.filled) == (3, 2, 2, 2)
    assert a.mae == np.mean(np.abs(err_a)) and a.rmse == np.sqrt(np.mean(err_a**2))
    assert b.mae == np.mean(np.abs(err_b)) and b.rmse == np.sqrt(np.mean(err_b**2))
    assert a.coverage == 2 / 3


def test_masks_hide_observed_groups_at_the_asked_rate_and_never_excluded_rows():
    table = toy_table()
    exclude = np.zeros(len(table.values), dtype=bool)
    exclude[::7] = True
    for scenario in (Scenario("r", "random", 0.2), Scenario("u", "runs", 0.2, 6)):
        hidden = hide(table, scenario, np.random.default_rng(1), exclude)
        assert not (hidden & np.isnan(table.values)).any()  # only observed cells
        assert not hidden[exclude].any()
        for group in field_groups(table.columns):
            cols = [table.column(c) for c in group]
            rows = hidden[:, cols]
            assert (rows.all(axis=1) == rows.any(axis=1)).all()  # a group is hidden together
            eligible = (~np.isnan(table.values[:, cols]).any(axis=1) & ~exclude).sum()
            assert rows[:, 0].sum() == pytest.approx(0.2 * eligible, abs=6)
    assert field_groups(COLUMNS) == [
        ("humidity", "temperature", "pressure"),
        ("pm1.0_cf_1", "pm2.5_cf_1"),
    ]


def test_runs_are_consecutive_readings_of_one_series():
    series = np.array([1, 2] * 50)
    hidden = mask_runs(np.ones(100, bool), series, 0.1, 5, np.random.default_rng(2))
    for s in (1, 2):
        own = hidden[series == s].astype(int)
        starts = np.flatnonzero(np.diff(np.concatenate([[0], own])) == 1)
        ends = np.flatnonzero(np.diff(np.concatenate([own, [0]])) == -1)
        lengths = ends - starts + 1
        # runs may overlap and merge, but none is shorter than asked unless cut by the end
        assert ((lengths >= 5) | (ends == len(own) - 1)).all()
    assert hidden.sum() >= 10


def test_streaming_adapter_learns_per_series_from_the_past_only():
    table = toy_table(n_sensors=2, n=30)
    masked = Table(table.name, table.columns, table.values.copy(), table.series, table.times)
    j = table.column("humidity")
    masked.values[5::6, j] = np.nan
    got = Streaming(lambda f: WindowImputer(f, 3, "mean"))(masked)
    for i in np.flatnonzero(np.isnan(masked.values[:, j])):
        past = masked.values[:i, j][(table.series[:i] == table.series[i])]
        past = past[~np.isnan(past)][-3:]
        assert got[i, j] == pytest.approx(np.mean(past), rel=1e-12)


def test_delayed_and_batch_methods_fill_and_report_waits():
    table = toy_table(n_sensors=2, n=40)
    masked = Table(table.name, table.columns, table.values.copy(), table.series, table.times)
    masked.values[10:14, table.column("pressure")] = np.nan
    delayed = Delayed()
    out = delayed(masked)
    assert len(delayed.delays) == len(table.values) and max(delayed.delays) > 0
    assert not np.isnan(out[10:14, table.column("pressure")]).any()
    knn = BatchKNN()(masked)
    assert knn.shape == table.values.shape and not np.isnan(knn[:, 2:]).any()


def test_every_default_method_runs_on_readings():
    readings = [
        Reading(
            s,
            1000 + 120 * k,
            {
                "latitude": 37.0 + s / 10,
                "longitude": -122.0,
                "humidity": None if k % 4 == 3 else 40.0 + k,
                "pm1.0_cf_1": 5.0 + s,
            },
        )
        for k in range(12)
        for s in range(3)
    ]
    table = table_from_readings("r", readings)
    rows = evaluate(table, default_methods(), [Scenario("r", "random", 0.2)], seed=0)
    assert {r.method for r in rows} == set(default_methods())
    assert all(r.filled <= r.hidden for r in rows)
