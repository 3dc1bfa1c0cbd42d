"""The column HalfSpaceTrees (`columns.hst.HstColumns`) against the per-reading detector it
twins (`HalfSpaceTreesDetector.score_then_learn`, itself tested bit for bit against river):
random streams over many seeds and configurations, every score bit for bit, every status."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from columns.batch import SCORED, UNSCORED, WARMING_UP
from columns.hst import HstColumns
from detectors.hst import HalfSpaceTreesDetector
from tests.column_streams import Slots, bits, stream, work_of

FEATURE = "pm1.0_cf_1"
STATUS = {WARMING_UP: "warming_up", SCORED: "scored", UNSCORED: "unscored"}
CONFIGS = [  # (limits, n_trees, height, window_size, capacity)
    ((0.0, 1200.0), 10, 8, 72, 128),  # the example's detector
    ((0.0, 1200.0), 10, 8, 72, 4),  # most tables in the side table
    ((0.0, 1200.0), 10, 8, 72, 90),  # tables move in and out of the side table
    ((0.0, 1200.0), 10, 8, 10, 1),
    ((-5.0, 50.0), 3, 4, 3, 128),
    ((0.0, 100.0), 1, 1, 1, 2),
    ((0.0, 1200.0), 4, 10, 40, 16),
]


def pm_values(cuts: list[float]):
    """PM1.0 as sensors give it (levels, noise, one decimal), spikes, values outside the limits
    and exactly on the trees' thresholds (where bisect_right goes right)."""

    def value(rng: random.Random, name: str, t: int) -> float:
        roll = rng.random()
        if roll < 0.05:
            return rng.choice((-3.0, 0.0, 1200.0, 1500.0, 1e9, -0.0))
        if roll < 0.1:
            return rng.choice(cuts)
        if roll < 0.15:
            return round(rng.uniform(0, 1200), 1)
        level = 2 + (hash((name, t // 50)) % 40)
        return round(level * rng.lognormvariate(0, 0.3), 1)

    return value


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("seed", range(6))
def test_scores_equal_the_per_reading_detector(seed, config):
    limits, n_trees, height, window, capacity = config
    options = dict(n_trees=n_trees, height=height, window_size=window, seed=11)
    twin = HstColumns(FEATURE, limits, capacity=capacity, **options)
    rng = random.Random(seed)
    oracles: dict[int, HalfSpaceTreesDetector] = {}
    slots = Slots()
    value = pm_values(list(twin._forest.cuts))
    big = 2500 if seed % 3 == 0 else 0
    polls = stream(seed, (FEATURE,), value, polls=max(160, 6 * window), sensors=30, big=big)
    for t, rows in enumerate(polls):
        if t in (50, 171):  # recovery: both sides pickled and loaded mid-stream
            twin = pickle.loads(pickle.dumps(twin))
            oracles = pickle.loads(pickle.dumps(oracles))
        at = slots(rows)
        twin.grow(len(slots.of))
        work = work_of(rows, (FEATURE,))
        work.placeholder[:] = [rng.random() < 0.05 for _ in rows]
        twin.apply(work, at, {})
        for i, (sensor, values) in enumerate(rows):
            detector = oracles.setdefault(
                sensor, HalfSpaceTreesDetector((FEATURE,), {FEATURE: limits}, **options)
            )
            if work.placeholder[i]:  # a placeholder is neither scored nor learnt
                score, status = None, "unscored"
            else:
                score, status = detector.score_then_learn(values)
            assert STATUS[int(work.status[i])] == status, (t, i)
            assert bits(work.score[i]) == bits(score), (t, i, score, work.score[i])
    assert sum(d.learned for d in oracles.values()) == int(twin.learned.sum())
    if capacity < min(8, twin._side_capacity) and twin.learned.max() >= 2 * window:  # side
        assert len(twin.side) and (twin.big >= 0).any()


@pytest.mark.parametrize("config", CONFIGS)
def test_pieces_are_the_forest_cell_totals(config):
    """The pivot (batched, or one window at a time) against `Forest.cell_totals` itself."""
    limits, n_trees, height, window, capacity = config
    twin = HstColumns(FEATURE, limits, n_trees=n_trees, height=height, window_size=window)
    forest = twin._forest
    rng = np.random.default_rng(window)
    for count in (1, 2, 3, 40):
        spread = rng.integers(0, forest.n_cells, (count, window))
        near = np.clip(rng.normal(rng.integers(0, forest.n_cells), 20, (count, window)), 0, None)
        for windows in (spread, np.minimum(near.astype(np.int64), forest.n_cells - 1)):
            which, cells, totals = twin._pieces(windows)
            for i in range(count):
                want = forest.cell_totals(windows[i], 0.1 * window)
                mine_cells, mine = cells[which == i], totals[which == i]
                assert mine_cells[0] == 0 and np.all(np.diff(mine) != 0)
                at = np.searchsorted(mine_cells, np.arange(forest.n_cells), side="right") - 1
                assert np.array_equal(mine[at], want)


def test_state_per_sensor_is_small_and_pickles():
    twin = HstColumns()
    twin.grow(1000)
    rng = np.random.default_rng(3)
    level = rng.lognormal(1.0, 1.0, 1000)
    for _ in range(150):
        rows = [(s, {FEATURE: round(float(v), 1)}) for s, v in
                enumerate(level * rng.lognormal(0, 0.3, 1000))]
        twin.apply(work_of(rows, (FEATURE,)), np.arange(1000), {})
    clone = pickle.loads(pickle.dumps(twin))
    assert np.array_equal(clone.table, twin.table) and np.array_equal(clone.window, twin.window)
    assert len(pickle.dumps(twin)) / 1000 < 1024  # bytes per sensor: see README


def test_options_it_cannot_twin_are_refused():
    with pytest.raises(ValueError, match="seed"):
        HstColumns(seed=None)
    with pytest.raises(ValueError, match="one feature"):
        HstColumns.of(
            HalfSpaceTreesDetector(("a", "b"), {"a": (0, 1), "b": (0, 1)}, window_size=3)
        )
    with pytest.raises(ValueError, match="lo < hi"):
        HstColumns(limits=(5.0, 5.0))
    twin = HstColumns.of(HalfSpaceTreesDetector(window_size=5))
    assert (twin.feature, twin.limits, twin.window_size) == (FEATURE, (0.0, 1200.0), 5)
