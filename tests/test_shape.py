"""The streaming left discord (`detectors.shape`) against a brute-force numpy oracle (every past
subsequence's Pearson correlation, `np.corrcoef`), its period estimate, bounded memory, pickling,
and the shape test inside `ranked`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors.ranked import TESTS, RankedTestsDetector
from detectors.shape import LeftDiscord, dominant_period


def brute(blocks: np.ndarray, m: int, history: int) -> float:
    """1 − max correlation of the last m values with every earlier, non-overlapping length-m
    subsequence among the last `history` values (the oracle, one subsequence at a time)."""
    w = blocks[-history:]
    q = w[-m:]
    return 1.0 - max(np.corrcoef(w[j : j + m], q)[0, 1] for j in range(len(w) - 2 * m + 1))


@pytest.mark.parametrize("period, k", [(23, 1), (150, 5)])
def test_left_discord_matches_brute_force(period, k):
    rng = np.random.default_rng(period)
    t = np.arange(2600)
    x = 100.0 + np.sin(2 * np.pi * t / period) + 0.3 * rng.standard_normal(len(t))
    x[2000:2040] += rng.standard_normal(40)  # a wrong stretch
    ld = LeftDiscord(history=256, raw=1024, length=32)
    got = [ld.update(float(v)) for v in x]
    assert ld.k == k
    m = ld.m
    assert abs(k * m - period) <= k  # the subsequence spans one period
    # blocks end k readings apart from the first estimate (at raw/2 = 512 readings): the
    # window then holds the means of the 256 blocks that ended last
    ends = [i for i in range(512, len(x) + 1, k) if i >= 2100]
    for i in ends[:: max(1, len(ends) // 12)]:
        blocks = x[i - 256 * k : i].reshape(-1, k).mean(axis=1)
        assert got[i - 1] == pytest.approx(brute(blocks, m, 256), abs=1e-7)


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
    scores = {}
    for tests in (TESTS, ("change", "level", "shift", "stuck")):
        det = RankedTestsDetector("v", tests=tests)
        s = np.array([det.score_then_learn({"v": float(v)})[0] or 0.0 for v in x])
        scores[tests] = s
    with_shape = scores[TESTS]
    assert 7000 <= int(np.argmax(with_shape[5000:])) + 5000 <= 7160
    assert with_shape[7000:7160].max() > RankedTestsDetector.threshold
    det = RankedTestsDetector("v", tests=TESTS)
    for v in x[:3000]:
        det.score_then_learn({"v": float(v)})
    again = pickle.loads(pickle.dumps(det))
    assert [det.score_then_learn({"v": float(v)}) for v in x[3000:3500]] == [
        again.score_then_learn({"v": float(v)}) for v in x[3000:3500]
    ]
