"""The NAB score against hand computation, and the detector evaluation on small data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.datasets import label_water_flow
from evaluation.nab import key_terms, nab_curve


def sig(y: float) -> float:
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def test_nab_score_by_hand():
    # readings 0..19, one window over readings 5..9 (length 5)
    times = list(range(20))
    scores = np.zeros(20)
    scores[7] = 0.9  # first alarm in the window, 3 readings before its end inclusive
    scores[8] = 0.95  # second alarm in the window: ignored
    scores[2] = 0.8  # false alarm before any window
    scores[12] = 0.85  # false alarm 3 readings after the window's end (length − 1 = 4)
    terms = [key_terms(times, scores, [(5, 9)])]
    [at_half] = nab_curve(terms, [0.5])
    raw = sig(-3 / 5) / sig(-1.0) - 0.11 + 0.11 * sig(3 / 4)
    assert at_half == pytest.approx(100 * (raw + 1) / 2, abs=1e-12)
    # above 0.9 only readings 8 (in window) and none outside: reward at 2 before the end
    [at_high] = nab_curve(terms, [0.9])
    assert at_high == pytest.approx(100 * (sig(-2 / 5) / sig(-1.0) + 1) / 2, abs=1e-12)
    # no alarm at all scores 0, by definition of the normalisation
    assert nab_curve(terms, [1.0])[0] == pytest.approx(0.0)


def test_water_flow_rule():
    values = [100.0, 99.0, 60.0, 24.0, 97.0, 101.0, 110.0, 100.0, 50.0]
    episodes = label_water_flow(values)
    spans = [(e.fault, e.start, e.end) for e in episodes]
    assert spans == [("low_flow", 2, 4), ("low_flow", 8, 8), ("peak", 6, 6)]
