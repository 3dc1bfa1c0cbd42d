"""HalfSpaceTrees with learnt limits against river's own, and the ensemble's alarm rule."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees

from detectors.catalog import make_detector
from detectors.ensemble import EnsembleDetector, on_common_scale
from detectors.learned_hst import LearnedLimitsHSTDetector, learned_limits
from detectors.zscore import RollingZScoreDetector


def pm_stream(n=600, seed=1):
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 6.0, n).round(1)
    values[[150, 400]] = [700.0, 90.0]
    return [float(v) for v in values]


@pytest.mark.parametrize("margin", [0.0, 3.0, 30.0])
def test_scores_equal_river_on_values_scaled_by_the_first_window(margin):
    stream = pm_stream()
    det = LearnedLimitsHSTDetector("pm", margin=margin, window_size=72)
    got = [det.score_then_learn({"pm": v}) for v in stream]
    lo, hi = learned_limits(stream[:72], margin)
    river = HalfSpaceTrees(n_trees=10, height=8, window_size=72, limits={"pm": (0, 1)}, seed=11)
    want = []
    for v in stream:  # river, as its documentation advises: the value scaled before the trees
        x = {"pm": (v - lo) / (hi - lo)}
        want.append(river.score_one(x))
        river.learn_one(x)
    assert [s for s, _ in got[:72]] == [None] * 72
    assert [s for s, _ in got[72:]] == want[72:]
    assert (det.lo, det.span) == (lo, hi - lo)


def test_learned_limits_widen_the_span():
    assert learned_limits([2.0, 6.0], 30.0) == (2.0 - 120.0, 6.0 + 120.0)


def test_ensemble_alarms_exactly_when_a_member_does_then_holds_off():
    stream = pm_stream()
    members = [RollingZScoreDetector("pm", k=3.0), LearnedLimitsHSTDetector("pm", margin=3.0)]
    alone = [RollingZScoreDetector("pm", k=3.0), LearnedLimitsHSTDetector("pm", margin=3.0)]
    ens = EnsembleDetector(members, holdoff=0)
    for v in stream:
        score, _ = ens.score_then_learn({"pm": v})
        own = [m.score_then_learn({"pm": v})[0] for m in alone]
        alarms = [s is not None and s > m.threshold for s, m in zip(own, alone, strict=True)]
        assert (score is not None and score > ens.threshold) == any(alarms)
    held = EnsembleDetector([RollingZScoreDetector("pm", k=3.0)], holdoff=5, rearm=math.inf)
    scores = [held.score_then_learn({"pm": v})[0] for v in stream]
    first = next(i for i, s in enumerate(scores) if s is not None and s > 0.5)
    assert all(s < 0.5 for s in scores[first + 1 : first + 6])
    # re-armed (the default): within the hold-off only a reading 10x rarer alarms again
    held = EnsembleDetector([RollingZScoreDetector("pm", k=3.0)], holdoff=5)
    again = [held.score_then_learn({"pm": v})[0] for v in stream]
    start = again[first]
    for s in again[first + 1 : first + 6]:
        assert s < 0.5 or (1.0 - s) * 10.0 <= 1.0 - start
        if s > 0.5:
            start = s


def test_common_scale_keeps_order_and_puts_each_threshold_at_one_half():
    xs = np.linspace(0, 1, 101)
    for t in (0.5, 0.9, 0.999):
        mapped = [on_common_scale(float(x), t) for x in xs]
        assert mapped == sorted(mapped) and on_common_scale(t, t) == 0.5
        assert mapped[0] == 0.0 and mapped[-1] == pytest.approx(1.0)


def test_hst_ensemble_copies_and_pickles_to_identical_continuations():
    stream = pm_stream(900)
    det = make_detector("hst_ensemble", "pm")
    for v in stream[:500]:
        det.score_then_learn({"pm": v})
    copy, loaded = det.copy(), pickle.loads(pickle.dumps(det))
    rest = [det.score_then_learn({"pm": v}) for v in stream[500:]]
    assert [copy.score_then_learn({"pm": v}) for v in stream[500:]] == rest
    assert [loaded.score_then_learn({"pm": v}) for v in stream[500:]] == rest
