"""`stats.histogram`: the octave grid, the per-key `HistogramRank` against an independent oracle
(exact mid-ranks among the values of the answering generation, binned by numpy's searchsorted on
the grid's edges), the array form `HistogramRanks` against the per-key one bit for bit, and
`detectors.stuck.StuckRunDetector` against `ranked`'s stuck test where both are exact."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from detectors.ranked import RankedTestsDetector
from detectors.stuck import StuckRunDetector
from stats.histogram import RUN_GRID, VALUE_GRID, HistogramRank, HistogramRanks, OctaveGrid

GRIDS = (RUN_GRID, VALUE_GRID, OctaveGrid(low=-2, high=3, per_octave=3, signed=True))


def edges(grid: OctaveGrid) -> np.ndarray:
    """The lower edge of every bin of |u| above the centre one, from the grid's definition."""
    k = grid.per_octave
    return np.array(
        [2.0 ** (e - 1) * (1 + j / k) for e in range(grid.low, grid.high + 1) for j in range(k)]
    )


def oracle_bin(grid: OctaveGrid, u: np.ndarray) -> np.ndarray:
    step = np.searchsorted(edges(grid), np.abs(u), side="right")
    if not grid.signed:
        return step
    return np.where(u >= 0, grid.side + step, grid.side - step)


def values(rng: random.Random, n: int) -> list[float]:
    """Values on many scales, ties, zeros, both signs, exact powers of two."""
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.1:
            out.append(0.0)
        elif roll < 0.2:
            out.append(float(2 ** rng.randint(-14, 33)) * rng.choice((1, -1)))
        elif roll < 0.3:
            out.append(float(rng.randint(0, 9)))
        else:
            out.append(rng.lognormvariate(0, 3) * rng.choice((1, -1)))
    return out


@pytest.mark.parametrize("grid", GRIDS)
def test_bins_follow_the_grids_edges_in_both_forms(grid):
    rng = random.Random(1)
    u = np.array(values(rng, 5000) + [math.inf, -math.inf, 5e-324, 2.0**grid.high, 2.0**31])
    if not grid.signed:
        u = np.abs(u)
    want = oracle_bin(grid, u)
    assert [grid.locate(float(x)) for x in u] == want.tolist()
    assert grid.locate_many(u).tolist() == want.tolist()
    assert want.min() >= 0 and want.max() == grid.bins - 1


def oracle_rank(past: list[float], grid: OctaveGrid, centre: float, unit: float, x: float):
    """Mid-rank of x among `past` binned (ties: the bin), new extremes ranked beyond: the
    module's definition, written out with numpy."""
    if not past:
        return 0.0, 0.0
    a = np.array(past)
    top, bottom = a.max(), a.min()
    spread = top - bottom if top - bottom > 0 else 1.0
    bins = oracle_bin(grid, (a - centre) / unit)
    b = oracle_bin(grid, np.array([(x - centre) / unit]))[0]
    below, inside = int((bins < b).sum()), int((bins == b).sum())
    above = len(a) - below - inside

    def mid(k):
        return (1.0 - 1e-4) * (k + 0.5 * inside) / len(a)

    high = 1.0 - 1e-4 * (1.0 - (x - top) / (x - top + spread)) if x > top else mid(below)
    low = 1.0 - 1e-4 * (1.0 - (bottom - x) / (bottom - x + spread)) if x < bottom else mid(above)
    return high, low


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("horizon", (7, 40, 2000))
def test_ranks_are_mid_ranks_of_the_answering_generation(grid, horizon):
    rng = random.Random(horizon)
    centre, unit = (0.0, 1.0) if not grid.signed else (rng.uniform(-5, 5), rng.uniform(0.1, 9))
    rank = HistogramRank(grid, horizon, centre, unit)
    old: list[float] = []  # the generations, as plain lists of values
    young: list[float] | None = None
    stream = values(rng, 600)
    if not grid.signed:
        stream = [abs(v) for v in stream]
    for i, x in enumerate(stream):
        high, low = oracle_rank(old, grid, centre, unit, x)
        assert rank.rank(x) == pytest.approx(high, rel=1e-12, abs=1e-15), i
        assert rank.rank_low(x) == pytest.approx(low, rel=1e-12, abs=1e-15), i
        assert rank.ranks(x) == (rank.rank(x), rank.rank_low(x))
        rank.update(x)
        old.append(x)
        if young is None and len(old) > horizon // 2:
            young = []
        if young is not None:
            young.append(x)
        if len(old) >= horizon:
            old, young = young, None
        assert rank.count == len(old)
        if i == 300:
            rank = pickle.loads(pickle.dumps(rank))


@pytest.mark.parametrize("horizon", (9, 2000))
def test_the_arrays_rank_as_each_key_does(horizon):
    """Random subsets of keys per call (each at most once), keys' own centres and units."""
    rng = random.Random(horizon)
    keys = 23
    many = HistogramRanks(VALUE_GRID, horizon)
    many.grow(5)
    many.grow(keys)
    assert many.slots >= keys
    place = [(rng.uniform(-3, 3), rng.choice((1e-3, 0.5, 7.0))) for _ in range(keys)]
    ones = [HistogramRank(VALUE_GRID, horizon, c, u) for c, u in place]
    many.centre[:keys] = [c for c, _ in place]
    many.unit[:keys] = [u for _, u in place]
    stream = values(rng, 4000)
    for t in range(0, len(stream) - keys, keys):
        s = np.array(rng.sample(range(keys), rng.randint(1, keys)))
        x = np.array(stream[t: t + len(s)])
        high, low = many.ranks(s, x)
        assert high.tolist() == [ones[k].rank(v) for k, v in zip(s, x.tolist(), strict=True)]
        assert low.tolist() == [ones[k].rank_low(v) for k, v in zip(s, x.tolist(), strict=True)]
        many.update(s, x)
        for k, v in zip(s.tolist(), x.tolist(), strict=True):
            ones[k].update(v)
    assert [many.n[k, many.older[k]] for k in range(keys)] == [r.count for r in ones]


def test_the_stuck_test_is_rankeds_where_both_are_exact():
    """Runs of at most 7 repeats (one bin each) and fewer than 256 of them (`TailRank`'s top):
    both rank exactly, so the scores are equal, alarms included."""
    rng = random.Random(3)
    stream: list[float] = []
    while len(stream) < 600:
        stream += [round(rng.uniform(0, 50), 1)] * rng.choice((1, 1, 1, 2, 3, 8))
    stream += [4.2] * 40  # a frozen sensor
    mine = StuckRunDetector("v", threshold=0.999975)
    theirs = RankedTestsDetector("v", threshold=0.999975, holdoff=0, tests=("stuck",))
    got = [mine.score_then_learn({"v": x}) for x in stream]
    want = [theirs.score_then_learn({"v": x}) for x in stream]
    assert got == want
    assert sum(s is not None and s > mine.threshold for s, _ in got) > 0
    assert mine.runs.count < 256


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        HistogramRank(RUN_GRID, horizon=1)
    with pytest.raises(ValueError):
        HistogramRank(VALUE_GRID, horizon=10, unit=0.0)
    with pytest.raises(ValueError):
        StuckRunDetector("v", horizon=40, min_count=30)
