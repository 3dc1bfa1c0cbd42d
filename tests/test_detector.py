"""The per-sensor detector scores exactly as river's own HalfSpaceTrees fed the same readings."""

import pickle

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees

from detectors.hst import HalfSpaceTreesDetector


def pm_stream(n=400, seed=1):
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 6.0, n)
    values[[150, 151, n - 50]] = [700.0, 650.0, 1100.0]
    return [float(v) for v in values]


def river_scores(stream, window_size=72):
    """Independent oracle: river HST with the example's configuration, score then learn."""
    model = HalfSpaceTrees(
        n_trees=10, height=8, window_size=window_size, limits={"pm1.0_cf_1": (0, 1200)}, seed=11
    )
    scores = []
    for v in stream:
        x = {"pm1.0_cf_1": v}
        scores.append(model.score_one(x))
        model.learn_one(x)
    return scores


def test_scores_equal_river_and_first_window_is_warming_up():
    stream = pm_stream()
    det = HalfSpaceTreesDetector()
    got = [det.score_then_learn({"pm1.0_cf_1": v}) for v in stream]
    want = river_scores(stream)
    assert [s for s, _ in got[:72]] == [None] * 72
    assert {status for _, status in got[:72]} == {"warming_up"}
    assert want[:72] == [0] * 72
    assert [s for s, _ in got[72:]] == want[72:]
    assert {status for _, status in got[72:]} == {"scored"}
    assert min(s for s, _ in got[72:]) > 0
    assert got[150][0] > 0.7 and got[350][0] > 0.7


def test_missing_feature_is_unscored_and_not_learnt():
    stream = pm_stream(200)
    det = HalfSpaceTreesDetector()
    got = []
    for i, v in enumerate(stream):
        got.append(det.score_then_learn({"pm1.0_cf_1": v}))
        if i == 100:
            assert det.score_then_learn({"pm1.0_cf_1": None}) == (None, "unscored")
    assert [s for s, _ in got[72:]] == river_scores(stream)[72:]


def test_several_features_with_their_limits():
    rng = np.random.default_rng(2)
    xs = [{"a": float(a), "b": float(b)} for a, b in rng.uniform(0, 50, (150, 2))]
    limits = {"a": (0, 50), "b": (0, 100)}
    det = HalfSpaceTreesDetector(["a", "b"], limits, window_size=20, n_trees=5, height=4, seed=3)
    model = HalfSpaceTrees(n_trees=5, height=4, window_size=20, limits=limits, seed=3)
    for x in xs:
        score, _ = det.score_then_learn(x)
        want = model.score_one(x)
        model.learn_one(x)
        assert (score or 0) == want


def test_state_pickles_and_resumes_identically():
    stream = pm_stream(300, seed=4)
    det = HalfSpaceTreesDetector()
    for v in stream[:150]:
        det.score_then_learn({"pm1.0_cf_1": v})
    clone = pickle.loads(pickle.dumps(det))
    rest = [det.score_then_learn({"pm1.0_cf_1": v}) for v in stream[150:]]
    assert [clone.score_then_learn({"pm1.0_cf_1": v}) for v in stream[150:]] == rest


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="no limits"):
        HalfSpaceTreesDetector(["pm2.5_cf_1"])
    with pytest.raises(ValueError, match="lo < hi"):
        HalfSpaceTreesDetector(limits={"pm1.0_cf_1": (5, 5)})
