"""The windowed imputer against a numpy oracle over the last N observed values."""

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imputers.window import WindowImputer


def oracle(stream, window, strategy):
    """Naive reference: keep every observed value in a list, look at its last `window` items."""
    observed, out = [], []
    for v in stream:
        if v is None:
            recent = np.array(observed[-window:])
            if not observed:
                out.append(None)
            elif strategy == "mean":
                out.append(float(np.mean(recent)))
            elif strategy == "median":
                out.append(float(np.median(recent)))
            else:
                out.append(observed[-1])
        else:
            observed.append(v)
            out.append(v)
    return out


def run(imputer, stream, name="x"):
    out = []
    for v in stream:
        values, imputed, missing = imputer.impute_one({name: v})
        assert imputed == ([name] if v is None and values[name] is not None else [])
        assert missing == ([name] if values[name] is None else [])
        out.append(values[name])
    return out


def tutorial_stream(n=200, seed=0):
    """The tutorial's data: random integers 0..10, a missing value at every 5th position."""
    rng = np.random.default_rng(seed)
    return [None if i % 5 == 0 else float(v) for i, v in enumerate(rng.integers(0, 11, n))]


@pytest.mark.parametrize("strategy", ["mean", "median", "last"])
@pytest.mark.parametrize("window", [1, 3, 10])
def test_matches_numpy_on_the_tutorial_stream(strategy, window):
    stream = tutorial_stream()
    got = run(WindowImputer(["x"], window, strategy), stream)
    want = oracle(stream, window, strategy)
    assert got[0] is None  # no history yet: stays missing
    assert got[1:] == pytest.approx(want[1:], rel=1e-12, abs=0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), max_size=120),
    st.integers(1, 12),
    st.sampled_from(["mean", "median", "last"]),
)
def test_matches_numpy_on_any_stream(stream, window, strategy):
    got = run(WindowImputer(["x"], window, strategy), stream)
    want = oracle(stream, window, strategy)
    for g, w in zip(got, want, strict=True):
        assert (g is None) == (w is None)
        if g is not None:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-6)


def test_running_sum_stays_exact_over_long_streams_with_large_offsets():
    # values near 1e9 lose their fractions in a careless running sum; the window's sum is made
    # exact each time the ring wraps, so at any point it is off by at most a window of roundings
    rng = np.random.default_rng(3)
    stream = [float(v) for v in 1e9 + rng.standard_normal(50_013)]
    imp = WindowImputer(["x"], 10)
    for n, v in enumerate(stream, 1):
        imp.impute_one({"x": v})
        if n > 49_990:
            values, _, _ = imp.impute_one({"x": None})
            exact = math.fsum(stream[n - 10 : n]) / 10
            assert abs(values["x"] - exact) <= 2 * 10 * np.finfo(float).eps * 1e9


def test_imputed_values_never_enter_the_window():
    imp = WindowImputer(["x"], window=2, strategy="mean")
    out = run(imp, [4.0, None, None, 8.0, None])
    assert out == [4.0, 4.0, 4.0, 8.0, 6.0]


def test_fields_are_independent_and_others_pass_through():
    imp = WindowImputer(["a", "b"], window=10)
    imp.impute_one({"a": 1.0, "b": None, "c": None})
    values, imputed, missing = imp.impute_one({"a": None, "b": None, "c": None})
    assert values == {"a": 1.0, "b": None, "c": None}
    assert (imputed, missing) == (["a"], ["b"])


def test_state_pickles_and_resumes_identically():
    stream = tutorial_stream(100, seed=5)
    whole = run(WindowImputer(["x"], 10), stream)
    first = WindowImputer(["x"], 10)
    head = run(first, stream[:37])
    resumed = pickle.loads(pickle.dumps(first))
    assert head + run(resumed, stream[37:]) == whole


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown strategy"):
        WindowImputer(["x"], 10, "mode")
    with pytest.raises(ValueError, match="window"):
        WindowImputer(["x"], 0)


def test_an_imputer_without_fields_passes_values_through_and_pickles():
    imp = pickle.loads(pickle.dumps(WindowImputer([], 10)))
    assert imp.impute_one({"a": 1.0, "b": None}) == ({"a": 1.0, "b": None}, [], [])


@pytest.mark.parametrize("strategy", ["mean", "median", "last"])
def test_a_copy_goes_on_alone(strategy):
    imp = WindowImputer(["x"], 3, strategy)
    run(imp, [1.0, 2.0, 3.0, 4.0])  # the window holds 2, 3, 4
    clone = imp.copy()
    run(clone, [100.0, 200.0])
    want = {"mean": 3.0, "median": 3.0, "last": 4.0}[strategy]
    assert run(imp, [None]) == [want]
    assert run(clone, [None]) == [{"mean": 304 / 3, "median": 100.0, "last": 200.0}[strategy]]


def test_a_snapshot_in_the_older_column_layout_resumes_identically():
    # before 2026-11-28 the buffer held one column per field and the sum had a compensation term
    stream = tutorial_stream(60, seed=9)
    whole = WindowImputer(["x", "y"], 10)
    out = [whole.impute_one({"x": v, "y": v})[0] for v in stream]
    first = WindowImputer(["x", "y"], 10)
    head = [first.impute_one({"x": v, "y": v})[0] for v in stream[:37]]
    state = first.__getstate__()
    old = {**state, "_buffer": state["_buffer"].T.copy(), "_carry": [0.0, 0.0], "_last": [0, 0]}
    resumed = object.__new__(WindowImputer)
    resumed.__setstate__(old)
    assert head + [resumed.impute_one({"x": v, "y": v})[0] for v in stream[37:]] == out
