"""Tail ranks against numpy, the ranked-tests detector's behaviour, NAB's probation and profiles."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from detectors.ranked import RankedTestsDetector
from evaluation.datasets import NAB_DEV, nab_files
from evaluation.nab import PROFILES, key_terms, nab_curve, probation
from evaluation.nab_bench import groups_halves, held_off
from stats.tail import NEW_EXTREME, TailRank


def numpy_rank(past: np.ndarray, x: float) -> float:
    """Independent oracle: mid-rank of x among `past`, scaled as TailRank documents."""
    below = np.count_nonzero(past < x) + 0.5 * np.count_nonzero(past == x)
    return (1.0 - NEW_EXTREME) * below / len(past)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tail_ranks_equal_numpy_in_the_top(seed):
    rng = np.random.default_rng(seed)
    values = np.round(rng.gamma(2.0, 3.0, 3000), 1)  # ties on purpose
    rank = TailRank(size=64, horizon=100_000)
    for i, x in enumerate(values):
        if i >= 64:
            past = values[:i]
            top_edge = np.sort(past)[-64]
            if x > past.max():
                assert 1.0 - NEW_EXTREME <= rank.rank(x) < 1.0
            elif x > top_edge:  # strictly inside the exact top
                assert rank.rank(x) == pytest.approx(numpy_rank(past, x), abs=1e-12)
            else:  # below the top: reported at its lower edge
                assert rank.rank(x) <= (1.0 - NEW_EXTREME) * (i - 64) / i + 1e-12
        rank.update(float(x))


def test_new_extremes_keep_their_order_and_stay_below_one():
    rank = TailRank(size=16)
    for x in range(1000):
        rank.update(float(x % 50))
    scores = [rank.rank(x) for x in (49.0, 50.0, 60.0, 100.0, 1e6, 1e12)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert scores[-1] < 1.0


def test_tail_rank_forgets_beyond_its_horizon():
    rank = TailRank(size=8, horizon=1000)
    for _ in range(1000):
        rank.update(100.0)  # an old regime of high values
    for i in range(600):
        rank.update(float(i % 10))
    # the answering generation began 500 values before the switch: the 100s are forgotten
    assert rank.n == 1100 - 500
    assert rank.rank(50.0) > 1.0 - NEW_EXTREME


def stream(n=2000, seed=3):
    rng = np.random.default_rng(seed)
    return [float(v) for v in 20.0 + 5.0 * np.sin(np.arange(n) / 30.0) + rng.normal(0, 1, n)]


def test_shift_statistic_equals_numpy():
    det = RankedTestsDetector("v", short=4, long=40)
    values = stream(300)
    for i, x in enumerate(values):
        stats = det.statistics(x)
        if i >= 4 + 20:
            older = np.array(values[max(0, i - 3 - 40) : i - 3])
            recent = np.array(values[i - 3 : i + 1])
            want = abs(recent.mean() - older.mean()) / older.std(ddof=1)
            assert stats[2] == pytest.approx(want, rel=1e-9)
            assert stats[0] == abs(x - values[i - 1])
        det.score_then_learn({"v": x})


def test_spike_stuck_and_holdoff():
    values = stream()
    values[1500] = 80.0  # a spike
    values[1700:1760] = [values[1700]] * 60  # stuck
    det = RankedTestsDetector("v", holdoff=50)
    scores = [det.score_then_learn({"v": x})[0] for x in values]
    finite = [s for s in scores if s is not None]
    assert all(0.0 <= s < 1.0 for s in finite)
    assert scores[1500] > det.threshold
    assert max(scores[1501:1551]) < det.threshold  # held off
    assert max(scores[1700:1760]) > det.threshold
    alarms = [i for i, s in enumerate(scores) if s is not None and s > det.threshold]
    # early on every new extreme alarms; once the key has a history, only the faults do
    assert {i for i in alarms if i >= 1000} <= {1500, *range(1700, 1761)}


def test_state_pickles_and_resumes_identically():
    values = stream(1200)
    det = RankedTestsDetector("v")
    for x in values[:700]:
        det.score_then_learn({"v": x})
    copy = pickle.loads(pickle.dumps(det))
    assert [det.score_then_learn({"v": x}) for x in values[700:]] == [
        copy.score_then_learn({"v": x}) for x in values[700:]
    ]


def test_missing_is_unscored_and_bad_options_refused():
    det = RankedTestsDetector("v")
    assert det.score_then_learn({"v": None}) == (None, "unscored")
    with pytest.raises(ValueError):
        RankedTestsDetector("v", tests=("nope",))
    with pytest.raises(ValueError):
        RankedTestsDetector("v", threshold=1.0)


def sig(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def test_nab_probation_and_profiles_by_hand():
    times = list(range(40))
    scores = np.zeros(40)
    scores[[1, 3]] = 0.9  # an alarm in probation (not scored), one in the first window
    scores[30] = 0.9  # inside the second window, 2 readings before its end inclusive
    scores[20] = 0.9  # a false alarm, 14 readings after the end of the probation window
    windows = [(0, 4), (25, 31)]  # the first lies wholly in probation (6 readings)
    terms = [key_terms(times, scores, windows, skip=probation(40))]
    assert probation(40) == 6
    tp = sig(-2 / 7) / sig(-1.0)
    fp = sig(16 / 4)  # the previous window's right edge is row 4, its length − 1 is 4
    for profile in PROFILES:
        [got] = nab_curve(terms, [0.5], profile)
        raw = profile.tp * tp + profile.fp * fp
        null = -profile.fn
        assert got == pytest.approx(100 * (raw - null) / (profile.tp - null), abs=1e-12)


def test_held_off_alarms_and_group_halves():
    s = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1], dtype=float)
    assert held_off(s, 0.5, 2).tolist() == [0, 1, 0, 0, 1, 0, 0, 1, 0]


def test_nab_dev_files_load():
    if not (NAB_DEV / "windows.json").is_file():
        pytest.skip(f"NAB development files not found at {NAB_DEV} (../shared/data/)")
    files = nab_files()
    assert len(files) == 31 and sum(len(f.windows) for f in files) == 57
    for f in files:
        assert all(0 <= a <= b < len(f.values) for a, b in f.windows)
    a, b = groups_halves(files)
    assert sorted(a + b) == list(range(31)) and {files[i].group for i in a}.isdisjoint(
        {files[i].group for i in b}
    )
