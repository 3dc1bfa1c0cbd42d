"""The new imputers against independent oracles: numpy/pandas-free recursions, numpy interpolation,
brute-force nearest neighbours, and scikit-learn's own KNNImputer."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.impute import KNNImputer

from imputers.ewma import EWMAImputer
from imputers.interpolate import LinearGapImputer
from imputers.knn import BatchKNNImputer
from imputers.running import RunningMeanImputer
from imputers.spatial import SpatialImputer


def gappy_stream(n=300, seed=0, rate=0.2):
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.standard_normal(n)) + 50.0
    gaps = rng.random(n) < rate
    return [None if g else float(v) for g, v in zip(gaps, values, strict=True)]


def fill_stream(imputer, stream):
    return [imputer.impute_one({"x": v})[0]["x"] for v in stream]


@pytest.mark.parametrize("alpha", [0.1, 0.3, 1.0])
def test_ewma_matches_the_recursion_over_observed_values(alpha):
    stream = gappy_stream(seed=1)
    got = fill_stream(EWMAImputer(["x"], alpha), stream)
    level, want = None, []
    for v in stream:
        if v is not None:
            level = v if level is None else (1 - alpha) * level + alpha * v
            want.append(v)
        else:
            want.append(level)
    assert got == pytest.approx(want, rel=1e-12)


def test_running_mean_is_the_mean_of_all_past_observations():
    stream = gappy_stream(seed=2)
    got = fill_stream(RunningMeanImputer(["x"]), stream)
    seen, want = [], []
    for v in stream:
        if v is not None:
            seen.append(v)
            want.append(v)
        else:
            want.append(float(np.mean(seen)) if seen else None)
    assert [g is None for g in got] == [w is None for w in want]
    assert [g for g in got if g is not None] == pytest.approx(
        [w for w in want if w is not None], rel=1e-12
    )


def run_delayed(imputer, stream, times):
    out = []
    for v, t in zip(stream, times, strict=True):
        out += [values["x"] for values, _, _ in imputer.impute_one({"x": v}, time=t)]
    return out + [values["x"] for values, _, _ in imputer.flush()]


def test_linear_gaps_equal_numpy_interp_and_stay_in_order():
    stream = gappy_stream(seed=3, rate=0.3)
    stream[0] = 50.0  # a left anchor; interior gaps only up to the last observation
    last = max(i for i, v in enumerate(stream) if v is not None)
    times = np.cumsum(np.random.default_rng(4).integers(90, 150, len(stream))).astype(float)
    got = run_delayed(LinearGapImputer(["x"], max_delay=len(stream)), stream, times)
    known = [i for i, v in enumerate(stream) if v is not None]
    want = np.interp(times, times[known], [stream[i] for i in known])
    assert len(got) == len(stream)
    assert got[: last + 1] == pytest.approx(want[: last + 1].tolist(), rel=1e-12)
    assert got[last + 1 :] == [stream[last]] * (len(stream) - last - 1)  # flushed: carried


def test_linear_holds_only_until_the_gap_closes_and_bounds_the_delay():
    imp = LinearGapImputer(["x"], max_delay=3)
    assert imp.impute_one({"x": None}) == [({"x": None}, [], ["x"])]  # no left anchor
    assert len(imp.impute_one({"x": 1.0})) == 1
    assert imp.impute_one({"x": None}) == [] and imp.impute_one({"x": None}) == []
    assert imp.impute_one({"x": None}) == []
    forced = imp.impute_one({"x": None})  # 4 held > max_delay: the oldest is carried forward
    assert forced == [({"x": 1.0}, ["x"], [])]
    restored = pickle.loads(pickle.dumps(imp))
    released = [v["x"] for v, _, _ in restored.impute_one({"x": 5.0})]
    # times are arrival counts: the gap runs from (1, 1.0) to (6, 5.0); t=2 was carried forward
    assert released == pytest.approx(np.interp([3, 4, 5, 6], [1, 6], [1.0, 5.0]).tolist())


def test_spatial_equals_brute_force_nearest_neighbours():
    rng = np.random.default_rng(5)
    n = 400
    lat, lon = 37 + rng.random(n), -122 + rng.random(n)
    value = rng.normal(10, 3, n)
    gap = rng.random(n) < 0.2
    imp = SpatialImputer(["pm"], k=4, cell_deg=0.1, max_rings=20, per_cell=1000)
    for i in range(n):
        got = imp.impute_one(
            {"latitude": lat[i], "longitude": lon[i], "pm": None if gap[i] else value[i]}
        )
        donors = [j for j in range(i) if not gap[j]]
        if not gap[i] or not donors:
            continue
        dy = (lat[donors] - lat[i]) * 110.574
        dx = (lon[donors] - lon[i]) * 111.320 * np.cos(np.radians(lat[i]))
        nearest = np.argsort(np.hypot(dx, dy), kind="stable")[:4]
        assert got[0]["pm"] == pytest.approx(float(np.mean(value[donors][nearest])), rel=1e-12)


def test_spatial_never_uses_its_own_position_and_needs_one():
    imp = SpatialImputer(["pm"], k=1)
    imp.impute_one({"latitude": 1.0, "longitude": 1.0, "pm": 5.0})
    assert imp.impute_one({"latitude": 1.0, "longitude": 1.0, "pm": None})[2] == ["pm"]
    assert imp.impute_one({"latitude": None, "longitude": 1.0, "pm": None})[2] == ["pm"]
    assert imp.impute_one({"latitude": 1.01, "longitude": 1.0, "pm": None})[0]["pm"] == 5.0


def test_batch_knn_equals_sklearn_and_keeps_empty_columns():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 4)) * [1, 10, 100, 1]
    X[rng.random(X.shape) < 0.1] = np.nan
    want = KNNImputer(n_neighbors=5).fit_transform(X)
    np.testing.assert_allclose(BatchKNNImputer().fit_transform(X), want, rtol=1e-12)
    wide = np.column_stack([X[:, :2], np.full(200, np.nan), X[:, 2:]])
    got = BatchKNNImputer().fit_transform(wide)
    assert np.isnan(got[:, 2]).all()
    np.testing.assert_allclose(np.delete(got, 2, axis=1), want, rtol=1e-12)


def test_scaled_knn_equals_sklearn_on_standardised_columns():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, 3)) * [1, 1000, 5] + [0, 1e5, 3]
    X[rng.random(X.shape) < 0.1] = np.nan
    mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    want = KNNImputer(n_neighbors=3).fit_transform((X - mean) / std) * std + mean
    want[~np.isnan(X)] = X[~np.isnan(X)]
    got = BatchKNNImputer(n_neighbors=3, scale=True).fit_transform(X)
    np.testing.assert_allclose(got, want, rtol=1e-9)
