"""The per-sensor detector scores exactly as river's own HalfSpaceTrees fed the same readings."""

import pickle

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees

from detectors.forest import build_forest, leaf_scores
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


def river_stream_scores(stream, features, limits, **params):
    model = HalfSpaceTrees(limits=limits, **params)
    out = []
    for x in stream:
        out.append(model.score_one(x))
        model.learn_one(x)
    return out


@pytest.mark.parametrize(
    ("n_trees", "height", "window_size", "seed"),
    [(10, 8, 72, 11), (3, 1, 5, 0), (7, 5, 13, 42), (1, 0, 4, 9), (25, 10, 250, None)],
)
def test_bit_for_bit_with_river_on_random_streams_with_edge_values(
    n_trees, height, window_size, seed
):
    rng = np.random.default_rng(7)
    values = list(rng.exponential(30.0, 1500)) + [-5.0, 0.0, 1200.0, 5000.0] * 5
    det = HalfSpaceTreesDetector(n_trees=n_trees, height=height, window_size=window_size, seed=7)
    if det._forest.cuts:  # values exactly on a split go right, as in river
        values[700:710] = det._forest.cuts[:10]
    stream = [{"pm1.0_cf_1": float(v)} for v in values]
    params = {"n_trees": n_trees, "height": height, "window_size": window_size, "seed": 7}
    want = river_stream_scores(stream, None, {"pm1.0_cf_1": (0, 1200)}, **params)
    got = [det.score_then_learn(x)[0] for x in stream]
    assert [0 if g is None else g for g in got] == want


def test_bit_for_bit_with_river_on_three_features():
    rng = np.random.default_rng(8)
    limits = {"pm": (0, 300), "rh": (0, 100), "t": (20, 110)}
    stream = [
        {"t": float(a), "pm": float(b), "rh": float(c)}
        for a, b, c in zip(
            rng.uniform(20, 110, 600), rng.gamma(2, 10, 600), rng.uniform(0, 100, 600), strict=True
        )
    ]
    det = HalfSpaceTreesDetector(["t", "pm", "rh"], limits, window_size=50, seed=5)
    want = river_stream_scores(stream, None, limits, n_trees=10, height=8, window_size=50, seed=5)
    assert [det.score_then_learn(x)[0] or 0 for x in stream] == want


def test_bit_for_bit_with_river_on_the_real_snapshot_in_file_order(snapshot_path):
    import json

    doc = json.loads(snapshot_path.read_text())
    col = doc["fields"].index("pm1.0_cf_1")
    stream = [{"pm1.0_cf_1": float(r[col])} for r in doc["data"] if r[col] is not None]
    det = HalfSpaceTreesDetector()
    got = [det.score_then_learn(x)[0] for x in stream]
    assert [0 if g is None else g for g in got] == river_scores([x["pm1.0_cf_1"] for x in stream])


def test_pickled_state_is_small_and_shares_the_tree_structure():
    det = HalfSpaceTreesDetector()
    for v in pm_stream(200):
        det.score_then_learn({"pm1.0_cf_1": v})
    blob = pickle.dumps(det)
    assert len(blob) < 12_000
    assert pickle.loads(blob)._forest is det._forest


@pytest.mark.parametrize(("height", "n_trees", "window"), [(8, 10, 72), (3, 5, 20), (0, 3, 10)])
def test_cell_totals_equal_the_per_leaf_walk_summed_over_trees(height, n_trees, window):
    # the one-feature table (a difference array over node spans) against the per-leaf table of
    # the several-feature path, summed over the trees for every cell of the line
    forest = build_forest(("pm",), ((0.0, 1200.0),), n_trees, height, 7)
    trees = np.arange(n_trees)
    rng = np.random.default_rng(height)
    for values in (rng.gamma(2.0, 5.0, window), rng.uniform(-50, 1300, window), [42.0] * window):
        cells = [forest.cell(v) for v in values]
        leaves = forest.cell_leaves[cells] + trees * 2**height
        counts = np.bincount(leaves.ravel(), minlength=n_trees * 2**height)
        per_leaf = leaf_scores(counts.reshape(n_trees, -1), height, 0.1 * window)
        want = per_leaf[trees, forest.cell_leaves].sum(axis=1)
        assert forest.cell_totals(cells, 0.1 * window).tolist() == want.tolist()
