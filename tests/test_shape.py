"""The streaming left discord (`detectors.shape`) against a brute-force numpy oracle (every past
subsequence's Pearson correlation, `np.corrcoef`), its period estimate, bounded memory, pickling,
and the shape test inside `ranked`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors.ranked import TESTS, RankedTestsDetector, rarity
from detectors.shape import LeftDiscord, dominant_period
from evaluation.ucr import located
from stats.tail import TailRank


def brute(blocks: np.ndarray, m: int, history: int) -> float:
    """1 − max correlation of the last m values with every earlier, non-overlapping length-m
    subsequence among the last `history` values (the oracle, one subsequence at a time)."""
    w = blocks[-history:]
    q = w[-m:]
    return 1.0 - max(np.corrcoef(w[j : j + m], q)[0, 1] for j in range(len(w) - 2 * m + 1))


def brute_amplitude(blocks: np.ndarray, m: int, history: int) -> float:
    """The smallest Euclidean distance per value, √(‖s − q‖²/m), of the last m values to every
    earlier, non-overlapping subsequence among the last `history` values (the oracle)."""
    w = blocks[-history:]
    q = w[-m:]
    return min(np.linalg.norm(w[j : j + m] - q) for j in range(len(w) - 2 * m + 1)) / m**0.5


@pytest.mark.parametrize("period, k", [(23, 1), (150, 5)])
def test_left_discord_matches_brute_force(period, k):
    rng = np.random.default_rng(period)
    t = np.arange(2600)
    x = 100.0 + np.sin(2 * np.pi * t / period) + 0.3 * rng.standard_normal(len(t))
    x[2000:2040] += rng.standard_normal(40)  # a wrong stretch
    ld = LeftDiscord(history=256, raw=1024, length=32)
    got, amplitude, lag = [], [], []
    for v in x:
        got.append(ld.update(float(v)))
        amplitude.append(ld.amplitude)
        lag.append(ld.lag)
    assert ld.k == k
    m = ld.m
    assert abs(k * m - period) <= k  # the subsequence spans one period
    # estimates at 128, 256, 512, 1024, 2048 readings (raw/8, then doubling); a period of 150
    # shows from 512 on (lags up to a third of the readings held), where k = 5 blocks start:
    # they end k readings apart from there, and the window holds the last 256 blocks' means
    ends = [i for i in range(512, len(x) + 1, k) if i >= 2100]
    for i in ends[:: max(1, len(ends) // 12)]:
        blocks = x[i - 256 * k : i].reshape(-1, k).mean(axis=1)
        assert got[i - 1] == pytest.approx(brute(blocks, m, 256), abs=1e-7)
        assert amplitude[i - 1] == pytest.approx(brute_amplitude(blocks, m, 256), abs=1e-7)
        # the subsequence ends at reading i; its centre lies half its span back
        assert lag[i - 1] == (k * m) // 2
        if k > 1:  # until the next block ends, the statistic stands and its place recedes
            assert got[i] == got[i - 1] and lag[i] == lag[i - 1] + 1


def test_period_and_flat_series():
    t = np.arange(3000)
    assert dominant_period(np.sin(2 * np.pi * t / 37), 4, 1000) == 37
    assert dominant_period(np.random.default_rng(0).standard_normal(3000), 4, 1000) is None
    ld = LeftDiscord(history=128, raw=256, length=16, fallback=16)
    flat = [ld.update(5.0) for _ in range(600)]
    assert flat[-1] == 0.0  # a flat stretch seen before is no discord


def test_memory_is_bounded_and_state_pickles():
    rng = np.random.default_rng(3)
    x = np.sin(np.arange(12_000) / 7.0) + 0.1 * rng.standard_normal(12_000)
    ld = LeftDiscord(history=512, raw=2048)
    for v in x[:5000]:
        ld.update(float(v))
    size = len(pickle.dumps(ld))
    copy = pickle.loads(pickle.dumps(ld))
    assert [ld.update(float(v)) for v in x[5000:5300]] == [
        copy.update(float(v)) for v in x[5000:5300]
    ]
    for v in x[5300:]:
        ld.update(float(v))
    assert len(pickle.dumps(ld)) <= size * 1.05  # no growth with the series


def test_ranked_with_the_shape_test_finds_a_wrong_beat_the_value_tests_miss():
    rng = np.random.default_rng(7)
    t = np.arange(9000)
    x = np.sin(2 * np.pi * t / 60) + 0.05 * rng.standard_normal(len(t))
    x[7000:7060] = -x[7000:7060]  # one beat upside down: every value ordinary
    scores, lags = {}, np.zeros(len(x), dtype=int)
    for tests in (TESTS, ("change", "level", "shift", "stuck")):
        det = RankedTestsDetector("v", tests=tests)
        s = []
        for i, v in enumerate(x):
            s.append(det.score_then_learn({"v": float(v)})[0] or 0.0)
            lags[i] = det.lag
        scores[tests] = np.array(s)
    assert not lags.any()  # the value tests name the reading they score
    with_shape = scores[TESTS]
    det = RankedTestsDetector("v", tests=TESTS)
    for i, v in enumerate(x):
        det.score_then_learn({"v": float(v)})
        lags[i] = det.lag
    top = int(np.argmax(with_shape[5000:])) + 5000
    assert 7000 <= top <= 7160
    # the row named is the centre of the unusual subsequence (one period, 60 readings), which
    # overlaps the upside-down beat: within the KDD Cup's 100 rows, and before the reading
    named = located(with_shape, 5000, lags)
    assert lags[top] > 0 and named == top + 1 - lags[top] and 7000 - 100 <= named <= 7060 + 100
    assert with_shape[7000:7160].max() > RankedTestsDetector.threshold
    det = RankedTestsDetector("v", tests=TESTS)
    for v in x[:3000]:
        det.score_then_learn({"v": float(v)})
    again = pickle.loads(pickle.dumps(det))
    assert [det.score_then_learn({"v": float(v)}) for v in x[3000:3500]] == [
        again.score_then_learn({"v": float(v)}) for v in x[3000:3500]
    ]


def test_a_new_extreme_is_no_rarer_than_one_in_n_plus_one():
    ranks = TailRank(size=256, horizon=20_000)
    for v in range(30):
        ranks.update(float(v))
    # above every one of 30 values: the top's spread 29, an excess of 71, a share of 0.71
    assert rarity(ranks, 100.0) == pytest.approx((1 - 71 / 100) / 31)
    assert rarity(ranks, 10.0) == pytest.approx(1.0 - ranks.rank(10.0))  # not an extreme
    for v in range(20_000):
        ranks.update(float(v % 100))
    assert ranks.n > 10_000  # then as rare as `TailRank` says
    assert rarity(ranks, 150.0) == pytest.approx(1.0 - ranks.rank(150.0))


def test_the_ucr_rule_names_the_reported_place_never_before_the_test_part():
    scores = np.array([9.0, 0.0, 0.0, 0.5, 0.9, 0.9, 0.1])  # the 9 lies in the training part
    lags = np.array([0, 0, 0, 0, 2, 0, 0])
    assert located(scores, 2) == 5  # the earliest highest score after row 2, 1-based
    assert located(scores, 2, lags) == 3  # its row less the lag it reported
    assert located(scores, 2, np.full(7, 4)) == 3  # a lag past the training part: its first row
