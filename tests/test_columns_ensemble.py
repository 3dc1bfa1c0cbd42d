"""The column `hst_ensemble` (`columns.ensemble.EnsembleColumns`) against the per-sensor
detector it twins (`make_detector("hst_ensemble", ...)` and smaller configurations of the same
shape): random streams with stuck runs, spikes, missing values, placeholders, sensors appearing
over time and pickle round-trips mid-stream; every score bit for bit, every status."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from columns.batch import STATUS_NAMES, Columns, Work
from columns.ensemble import EnsembleColumns
from detectors.catalog import HOLDOFF_SECONDS, STUCK_THRESHOLD, hst_ensemble, make_detector
from detectors.ensemble import EnsembleDetector
from detectors.holdoff import TIME
from detectors.learned_hst import LearnedLimitsHSTDetector
from detectors.ranked import RankedTestsDetector
from detectors.stuck import StuckRunDetector
from tests.column_streams import Slots, bits

FEATURE = "pm1.0_cf_1"


def small(stuck_holdoff: int = 3, gate: float | None = 0.6, seconds: float | None = None):
    """The ensemble's shape with short windows and horizons, so tails roll over in a test."""

    def make():
        trees = LearnedLimitsHSTDetector(FEATURE, margin=2.0, window_size=10, gate=gate,
                                         threshold=0.95)
        stuck = StuckRunDetector(FEATURE, threshold=0.99, holdoff=stuck_holdoff, horizon=120,
                                 min_count=5)
        return EnsembleDetector([trees, stuck], holdoff=4, holdoff_seconds=seconds)

    return make


FACTORIES = {
    "default": lambda: make_detector("hst_ensemble", FEATURE),
    "short_window": lambda: hst_ensemble(FEATURE, window_size=12, holdoff=5),
    "small": small(),
    "small_no_gate": small(0, None),
    # a hold-off in seconds (the air-quality flow's): polls are POLL seconds apart, jittered
    "timed": lambda: hst_ensemble(FEATURE, holdoff_seconds=HOLDOFF_SECONDS),
    "small_timed": small(seconds=1500),  # 12 polls, where the count says 4
}
#: Seconds between polls in the streams (each reading jittered by up to a third of it).
POLL = 120


def readings(seed: int, polls: int, sensors: int):
    """Polls of `(sensor, value or None, placeholder)`: PM-like levels, stuck runs (the same
    value repeated), spikes, zeros, missing runs; sensors join over time."""
    rng = random.Random(seed)
    p_missing = rng.choice((0.0, 0.05, 0.3))
    joins = {s: rng.randrange(polls // 2) if rng.random() < 0.5 else 0 for s in range(sensors)}
    ids = rng.sample(range(10**6), sensors)
    level = {s: rng.uniform(2, 60) for s in range(sensors)}
    last: dict[int, float] = {}
    stuck: dict[int, int] = {}
    out = []
    for t in range(polls):
        rows = []
        for s in rng.sample(range(sensors), sensors):
            if t < joins[s] or rng.random() < 0.1:
                continue
            if stuck.get(s, 0) > 0 and s in last:
                stuck[s] -= 1
                v: float | None = last[s]
            elif rng.random() < p_missing:
                v = None
            else:
                roll = rng.random()
                if roll < 0.02:
                    stuck[s] = rng.choice((3, 10, 40, 150))
                if roll < 0.04:
                    v = round(level[s] * rng.uniform(5, 50), 1)  # a spike
                elif roll < 0.05:
                    v = 0.0
                else:
                    v = round(level[s] * rng.lognormvariate(0, 0.3), 1)
                last[s] = v
            rows.append((ids[s], v, rng.random() < 0.03))
        out.append(rows)
    return out


def check(
    factory, seed: int, polls: int, sensors: int, per_batch: int = 1
) -> tuple[int, int, EnsembleColumns]:
    """Polls through the twin and through per-sensor oracles; `per_batch` polls in a batch (a
    sensor's rows repeat in it, in order)."""
    twin = EnsembleColumns.of(factory())
    oracles: dict[int, object] = {}
    slots = Slots()
    alarms = scored = 0
    stream = readings(seed, polls, sensors)
    timed = [
        [(sensor, v, p, t * POLL + (sensor * 7 + t) % 41) for sensor, v, p in rows]
        for t, rows in enumerate(stream)
    ]
    batches = [sum(timed[i: i + per_batch], []) for i in range(0, polls, per_batch)]
    for t, batch in enumerate(batches):
        if t in (len(batches) // 3, 2 * len(batches) // 3):  # recovery: pickled mid-stream
            twin = pickle.loads(pickle.dumps(twin))
            oracles = pickle.loads(pickle.dumps(oracles))
        rows = [(sensor, v, p) for sensor, v, p, _ in batch]
        at = slots([(sensor, None) for sensor, _, _ in rows])
        twin.grow(len(slots.of))
        values = np.array([[np.nan if v is None else v] for _, v, _ in rows]).reshape(-1, 1)
        sensors_ = np.array([sensor for sensor, _, _ in rows], dtype=np.int64)
        times = np.array([time for *_, time in batch], np.int64)
        work = Work.of(Columns(sensors_, times, (FEATURE,), values))
        work.placeholder[:] = [p for _, _, p in rows]
        twin.apply(work, at, {})
        for i, (sensor, v, placeholder) in enumerate(rows):
            detector = oracles.setdefault(sensor, factory())
            if placeholder:  # the per-sensor chain: a placeholder is neither scored nor learnt
                score, status = None, "unscored"
            else:
                score, status = detector.score_then_learn({FEATURE: v, TIME: int(times[i])})
            assert STATUS_NAMES[int(work.status[i])] == status, (t, i, seed)
            assert bits(work.score[i]) == bits(score), (t, i, seed, score, work.score[i])
            scored += status == "scored"
            alarms += score is not None and score > 0.5
    return scored, alarms, twin


@pytest.mark.parametrize("name", list(FACTORIES))
@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_the_per_sensor_ensemble(name, seed):
    polls = 700 if name.startswith("small") else 260
    scored, alarms, _ = check(FACTORIES[name], seed, polls, sensors=12)
    assert scored > 1000 and alarms > 0  # the streams reach the scored phase and alarm


@pytest.mark.parametrize("name", ("default", "small", "small_timed"))
def test_a_batch_where_a_sensor_repeats_is_taken_in_order(name):
    """Several polls in one batch: each sensor's rows are scored and learnt in order."""
    polls = 700 if name.startswith("small") else 300
    scored, alarms, _ = check(FACTORIES[name], 7, polls, sensors=8, per_batch=5)
    assert scored > 1000 and alarms > 0


def test_long_streams_roll_the_gate_over():
    """Past the gate's horizon (2,000 readings) and the stuck test's rare runs."""
    scored, alarms, twin = check(FACTORIES["default"], seed=99, polls=2600, sensors=3)
    assert twin.trees.learned.max() > 2000 and alarms > 0


def test_stuck_runs_alarm_as_the_per_sensor_stuck_test():
    """A long frozen run alarms in both (the stuck member's threshold, on the common scale)."""
    factory = FACTORIES["default"]
    twin, oracle = EnsembleColumns.of(factory()), factory()
    twin.grow(1)
    rng = random.Random(5)
    stream = [round(10 * rng.lognormvariate(0, 0.3), 1) for _ in range(600)] + [7.7] * 400
    mine = []
    for v in stream:
        work = Work.of(Columns(np.array([1]), np.array([0]), (FEATURE,), np.array([[v]])))
        twin.apply(work, np.array([0]), {})
        mine.append(work.score[0])
    theirs = [oracle.score_then_learn({FEATURE: v})[0] for v in stream]
    assert [bits(m) for m in mine] == [bits(t) for t in theirs]
    assert max(theirs[600:]) > 0.5 and oracle.members[1].threshold == STUCK_THRESHOLD


def test_what_it_cannot_twin_is_refused():
    with pytest.raises(ValueError, match="EnsembleDetector"):
        EnsembleColumns.of(make_detector("hst", FEATURE))
    used = make_detector("hst_ensemble", FEATURE)
    used.score_then_learn({FEATURE: 1.0})
    with pytest.raises(ValueError, match="fresh"):
        EnsembleColumns.of(used)
    ranked = RankedTestsDetector(FEATURE)
    with pytest.raises(ValueError, match="learned-limits trees, stuck test"):
        EnsembleColumns.of(EnsembleDetector([LearnedLimitsHSTDetector(FEATURE), ranked]))
    with pytest.raises(ValueError, match="learned-limits"):
        EnsembleColumns.of(EnsembleDetector([ranked]))
