"""The shared hold-off (`detectors.holdoff`): a hand-built sequence worked out by hand, the time
span, the column twin against the scalar class on random streams, and the spike a false alarm
hid in `../shared/data/examples/spike-after-false-alarm.csv`."""

from __future__ import annotations

import csv
import math
import pickle
import random
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from detectors.holdoff import TIME, HoldOff, apply_columns
from detectors.ranked import RankedTestsDetector
from imputers.window import WindowImputer

EXAMPLE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared" / "data" / "examples" / "spike-after-false-alarm.csv"
)


def test_hand_built_sequence():
    # threshold 0.9, span 4, re-arm at 10x rarer. Worked by hand:
    # 0.95 alarms (rarity 0.05, quiet 4); 0.99 is 5x rarer: held (0.891); 0.9951 is 10.2x rarer:
    # alarms, restarting the span (rarity 0.0049, quiet 4); 0.999 is only 4.9x rarer: held;
    # three more held, then the span is over and 0.93 alarms on its own.
    h = HoldOff(threshold=0.9, span=4)
    seq = [0.95, 0.99, 0.9951, 0.999, 0.2, 0.3, 0.4, 0.93, 0.1]
    want = [0.95, 0.99 * 0.9, 0.9951, 0.999 * 0.9, 0.2 * 0.9, 0.3 * 0.9, 0.4 * 0.9, 0.93, 0.1 * 0.9]
    assert [h.apply(s) for s in seq] == pytest.approx(want, abs=1e-12)
    never = HoldOff(threshold=0.9, span=4, rearm=math.inf)
    assert [never.apply(s) for s in seq[:5]] == pytest.approx([0.95, *(s * 0.9 for s in seq[1:5])])


def test_span_in_seconds_where_readings_have_a_time():
    h = HoldOff(threshold=0.9, span=1, seconds=300.0)
    times = [0.0, 60.0, 120.0, 299.0, 300.0]
    got = [h.apply(0.95, at=t) for t in times]
    assert got == pytest.approx([0.95, 0.855, 0.855, 0.855, 0.95])
    counting = HoldOff(threshold=0.9, span=1, seconds=300.0)  # no time: counts readings
    assert [counting.apply(0.95) for _ in range(3)] == pytest.approx([0.95, 0.855, 0.95])
    with pytest.raises(ValueError):
        HoldOff(threshold=1.5, span=3)


def test_column_twin_matches_the_class_bit_for_bit():
    rng = random.Random(4)
    keys = 7
    holds = [HoldOff(threshold=0.9, span=rng.randrange(6)) for _ in range(keys)]
    model = HoldOff(threshold=0.9, span=0)
    quiet, rarity = np.zeros(keys, np.int64), np.ones(keys)
    spans = np.array([h.span for h in holds])
    for _ in range(400):
        score = np.array([1.0 - rng.random() ** rng.choice((1, 3, 8)) for _ in range(keys)])
        want = [h.apply(float(s)) for h, s in zip(holds, score, strict=True)]
        got = np.empty(keys)
        for span in set(spans.tolist()):  # one call per span (the twin's span is shared)
            k = np.flatnonzero(spans == span)
            model.span = span
            got[k], quiet[k], rarity[k] = apply_columns(model, score[k], quiet[k], rarity[k])
        assert got.tolist() == want
        assert quiet.tolist() == [h.quiet for h in holds]
        assert rarity.tolist() == [h.rarity for h in holds]


def test_ranked_pickles_with_its_hold_off():
    det = RankedTestsDetector("v", holdoff=5)
    rng = random.Random(1)
    for _ in range(300):
        det.score_then_learn({"v": rng.gauss(0, 1)})
    det.score_then_learn({"v": 40.0})
    copy = pickle.loads(pickle.dumps(det))
    tail = [rng.gauss(0, 1) for _ in range(20)]
    assert [det.score_then_learn({"v": x}) for x in tail] == [
        copy.score_then_learn({"v": x}) for x in tail
    ]


def example() -> tuple[list[float], list[float | None]]:
    if not EXAMPLE.exists():
        pytest.skip(f"example not found at {EXAMPLE} (../shared/data/examples/)")
    with EXAMPLE.open() as f:
        rows = list(csv.DictReader(f))
    times, values = [], []
    for r in rows:  # rows the series flow would turn into dead letters are left out
        try:
            t = datetime.fromisoformat(r["timestamp"]).timestamp()
            v = float(r["value"]) if r["value"] else None
        except (TypeError, ValueError):
            continue
        if v is None or math.isfinite(v):
            times.append(t)
            values.append(v)
    return times, values


@pytest.mark.parametrize("with_time", [False, True])
def test_the_spike_after_a_false_alarm_is_reported(with_time):
    times, values = example()
    spike = values.index(80.0)  # among values about 23
    det = RankedTestsDetector("value", holdoff_seconds=6000.0 if with_time else None)
    imputer = WindowImputer(["value"], window=10)  # as the series flow fills gaps
    filled = [imputer.impute_one({"value": v})[0]["value"] for v in values]
    alarms = []
    for i, (t, v) in enumerate(zip(times, filled, strict=True)):
        reading = {"value": v, TIME: t} if with_time else {"value": v}
        score, _ = det.score_then_learn(reading)
        if score is not None and score > det.threshold:
            alarms.append(i)
    assert spike in alarms
    earlier = [i for i in alarms if i < spike]
    assert earlier and spike - earlier[-1] < 100  # it came inside the former hold-off
    never = RankedTestsDetector("value", rearm=math.inf)  # the former rule hid it
    scores = [never.score_then_learn({"value": v})[0] for v in filled]
    assert scores[spike] < never.threshold
