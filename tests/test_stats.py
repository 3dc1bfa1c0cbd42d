"""Streaming statistics against numpy: every statistic, cumulative and rolling, and merge."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stats import (
    EWMean,
    Extremes,
    Moments,
    QuantileSketch,
    RollingEWMean,
    RollingExtremes,
    RollingMoments,
    RollingQuantile,
)

MISSING = (None, float("nan"))
# values whose squares would underflow (|x| < 1e-100) are left out: no variance survives them
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(
    lambda x: x == 0.0 or abs(x) > 1e-100
)
streams = st.lists(st.one_of(finite, finite, finite, st.sampled_from(MISSING)), max_size=120)
windows = st.integers(min_value=1, max_value=12)
alphas = st.floats(min_value=0.01, max_value=1.0)


def fed(stat, values):
    """`stat` after `update` with each value in turn."""
    for value in values:
        stat.update(value)
    return stat


def observed(xs) -> list[float]:
    return [x for x in xs if x is not None and not math.isnan(x)]


def n_missing(xs) -> int:
    return len(xs) - len(observed(xs))


def close(got, want, scale: float) -> bool:
    """Equal within 1e-9 relative, or a rounding error of the data's own scale."""
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12 * max(scale, 1e-300))


def check_moments(stat, values: list[float], recent: list[float] | None = None) -> None:
    """`recent`: values whose rounding may linger (a rolling window's last two laps)."""
    assert stat.n == len(values)
    if not values:
        assert stat.mean is None and stat.variance is None
        return
    a = np.array(values)
    scale = float(np.abs(np.array(recent or values)).max())
    assert close(stat.mean, float(np.mean(a)), scale)
    if len(values) < 2:
        assert stat.variance is None and stat.std is None
        return
    assert close(stat.variance, float(np.var(a, ddof=1)), scale**2 * len(values))
    # the std is the root of that variance (an error ε in the variance is at most √ε in the std)
    assert stat.std == math.sqrt(stat.variance)
    assert close(stat.std**2, float(np.std(a, ddof=1)) ** 2, scale**2 * len(values))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(streams)
def test_moments_match_numpy_and_count_missing(xs):
    m = Moments()
    for x in xs:
        m.update(x)
    assert m.n_missing == n_missing(xs)
    check_moments(m, observed(xs))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(streams, streams)
def test_moments_merge_is_the_concatenated_stream(xs, ys):
    a, b = fed(Moments(), xs), fed(Moments(), ys)
    merged = a.merge(b)
    assert merged.n_missing == n_missing(xs) + n_missing(ys)
    check_moments(merged, observed(xs) + observed(ys))


@settings(max_examples=100, deadline=None, derandomize=True)
@given(streams, windows)
def test_rolling_moments_match_numpy_at_every_step(xs, window):
    r = RollingMoments(window)
    seen: list[float] = []
    for x in xs:
        r.update(x)
        seen = observed(seen + [x])
        check_moments(r, seen[-window:], seen[-2 * window :])
    assert r.n_missing == n_missing(xs)


def test_moments_are_stable_far_from_zero():
    """1e6 values from N(1e9, 1): within 1e-9 relative of numpy's two-pass variance."""
    x = np.random.default_rng(0).normal(1e9, 1.0, 1_000_000)
    m = Moments()
    for v in x.tolist():
        m.update(v)
    want = float(np.var(x, ddof=1))
    assert abs(m.variance - want) / want < 1e-9
    assert abs(m.mean - float(np.mean(x))) / 1e9 < 1e-15


def test_rolling_moments_stay_stable_far_from_zero():
    x = np.random.default_rng(1).normal(1e9, 1.0, 50_000)
    r = RollingMoments(1000)
    for v in x.tolist():
        r.update(v)
    want = float(np.var(x[-1000:], ddof=1))
    assert abs(r.variance - want) / want < 1e-9


@settings(max_examples=150, deadline=None, derandomize=True)
@given(streams, streams)
def test_extremes_and_merge_match_numpy(xs, ys):
    a, b = fed(Extremes(), xs), fed(Extremes(), ys)
    for stat, values in ((a, observed(xs)), (a.merge(b), observed(xs) + observed(ys))):
        assert stat.n == len(values)
        if values:
            assert (stat.min, stat.max) == (float(np.min(values)), float(np.max(values)))
        else:
            assert stat.min is None and stat.max is None
    assert a.merge(b).n_missing == n_missing(xs) + n_missing(ys)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(streams, windows)
def test_rolling_extremes_match_numpy_at_every_step(xs, window):
    r = RollingExtremes(window)
    seen: list[float] = []
    for x in xs:
        r.update(x)
        seen = observed(seen + [x])
        last = seen[-window:]
        assert r.n == len(last)
        if last:
            assert (r.min, r.max) == (float(np.min(last)), float(np.max(last)))
        else:
            assert r.min is None and r.max is None
    assert r.n_missing == n_missing(xs)


def ewma_oracle(values: list[float], alpha: float) -> float:
    """numpy: the adjust=False EWMA written as explicit weights."""
    a = np.array(values)
    n = len(a)
    weights = alpha * (1 - alpha) ** np.arange(n - 1, -1, -1)
    weights[0] = (1 - alpha) ** (n - 1)
    return float(np.dot(weights, a))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(streams, streams, alphas)
def test_ewmean_and_merge_match_numpy(xs, ys, alpha):
    a, b = fed(EWMean(alpha), xs), fed(EWMean(alpha), ys)
    for stat, values in ((a, observed(xs)), (a.merge(b), observed(xs) + observed(ys))):
        assert stat.n == len(values)
        if values:
            scale = float(np.abs(values).max())
            assert close(stat.mean, ewma_oracle(values, alpha), scale * len(values))
        else:
            assert stat.mean is None


@settings(max_examples=100, deadline=None, derandomize=True)
@given(streams, windows, alphas)
def test_rolling_ewmean_matches_numpy_at_every_step(xs, window, alpha):
    r = RollingEWMean(window, alpha)
    seen: list[float] = []
    for x in xs:
        r.update(x)
        seen = observed(seen + [x])
        last = np.array(seen[-window:])
        if not len(last):
            assert r.mean is None
            continue
        weights = (1 - alpha) ** np.arange(len(last) - 1, -1, -1)
        want = float(np.dot(weights, last) / weights.sum())
        scale = float(np.abs(seen[-2 * window :]).max()) / weights.sum()
        assert close(r.mean, want, scale * window)
    assert r.n_missing == n_missing(xs)


def assert_rank_within(values: list[float], got: float, q: float, error: int) -> None:
    """Some index of `got` in sorted(values) is within `error` of q·(n − 1)."""
    a = np.sort(np.array(values))
    lo = int(np.searchsorted(a, got, side="left"))
    hi = int(np.searchsorted(a, got, side="right"))
    target = q * (len(a) - 1)
    assert hi > lo, "the sketch returned a value that is not in the stream"
    assert lo - error <= target < hi + error


quantile_streams = st.lists(
    st.one_of(st.integers(-50, 50).map(float), finite, st.sampled_from(MISSING)), max_size=400
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(quantile_streams, st.integers(2, 16), st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]))
def test_quantile_sketch_rank_error_is_guaranteed(xs, k, q):
    s = QuantileSketch(k)
    for x in xs:
        s.update(x)
    values = observed(xs)
    assert (s.n, s.n_missing) == (len(values), n_missing(xs))
    if not values:
        assert s.quantile(q) is None
        return
    assert_rank_within(values, s.quantile(q), q, s.rank_error)
    assert sum(len(level) for level in s.levels) <= 2 * k * len(s.levels)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(quantile_streams, quantile_streams, st.integers(2, 16), st.sampled_from([0.5, 0.95]))
def test_quantile_sketch_merge_is_the_concatenated_stream(xs, ys, k, q):
    a, b = fed(QuantileSketch(k), xs), fed(QuantileSketch(k), ys)
    merged = a.merge(b)
    values = observed(xs) + observed(ys)
    assert (merged.n, merged.n_missing) == (len(values), n_missing(xs) + n_missing(ys))
    if values:
        assert_rank_within(values, merged.quantile(q), q, merged.rank_error)


def test_quantile_sketch_is_accurate_on_a_long_stream():
    x = np.random.default_rng(2).lognormal(1.0, 1.0, 100_000)
    s = QuantileSketch(200)
    for v in x.tolist():
        s.update(v)
    assert s.rank_error <= 0.05 * len(x)
    assert sum(len(level) for level in s.levels) < 2_000
    for q in (0.5, 0.95):
        assert_rank_within(x.tolist(), s.quantile(q), q, s.rank_error)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(streams, windows, st.sampled_from([0.5, 0.95]))
def test_rolling_quantile_matches_numpy_at_every_step(xs, window, q):
    r = RollingQuantile(q, window)
    seen: list[float] = []
    for x in xs:
        r.update(x)
        seen = observed(seen + [x])
        last = seen[-window:]
        if last:
            want = float(np.quantile(last, q))
            assert close(r.value, want, float(np.abs(last).max()))
        else:
            assert r.value is None
    assert r.n_missing == n_missing(xs)


@pytest.mark.parametrize(
    "stat",
    [Moments(), RollingMoments(4), Extremes(), RollingExtremes(4), EWMean(0.3)]
    + [RollingEWMean(4, 0.3), QuantileSketch(4), RollingQuantile(0.5, 4)],
)
def test_every_statistic_pickles_mid_stream(stat):
    for x in (1.0, None, 5.0, 2.0, 8.0, 3.0):
        stat.update(x)
    copy = pickle.loads(pickle.dumps(stat))
    stat.update(7.0)
    copy.update(7.0)
    assert pickle.dumps(copy) == pickle.dumps(stat)
