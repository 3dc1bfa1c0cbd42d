"""Any cadence: the spans are seconds (or each sensor's observed interval), so the defaults hold
on PurpleAir's 2-minute real time and on its 10-minute history alike.

Each test writes a polls file of hand-made readings, runs the flow with the defaults (nothing
set but the outputs), and checks what comes out against what the rules say,
worked out by hand in the test: which steps are gaps, which readings are a flatline or a dead
channel, and which scores an alarm holds off (an independent hold-off over the raw scores of a
detector with none).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import TestingSink, run_main

from dataflows.air_quality import build_flow
from detectors.catalog import hst_ensemble
from detectors.ensemble import EnsembleDetector

FIELDS = ["sensor_index", "last_seen", "humidity", "pm2.5_cf_1", "pm2.5_cf_1_a", "pm2.5_cf_1_b"]
T0 = 1_700_000_000


def write(path: Path, rows: list[tuple[int, float, float]], sensor: int = 7) -> str:
    """A polls file, one poll per reading `(time, pm A, pm B)`; humidity moves every poll."""
    lines = []
    for k, (time, a, b) in enumerate(rows):
        row = [sensor, time, 40.0 + (k % 7), round((a + b) / 2, 3), a, b]
        lines.append(json.dumps({"data_time_stamp": time, "fields": FIELDS, "data": [row]}))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run(source: str, **options: Any) -> dict[str, list]:
    got: dict[str, list] = {name: [] for name in ("output", "events", "readings", "totals")}
    sinks = {name: TestingSink(out) for name, out in got.items()}
    run_main(build_flow(source, progress=None, **sinks, **options))
    return got


def pairs(times: list[int], pm: list[float]) -> list[tuple[int, float, float]]:
    """Readings whose channels agree exactly."""
    return [(t, v, v) for t, v in zip(times, pm, strict=True)]


def varying(n: int, seed: int = 1) -> list[float]:
    """PM that moves from one reading to the next (never a flatline), both channels agreeing."""
    rng = random.Random(seed)
    return [round(8.0 + rng.uniform(-2, 2), 2) for _ in range(n)]


# --- gaps ------------------------------------------------------------------------------------


def test_gaps_at_10_minutes_are_the_real_ones(tmp_path):
    """10-minute averages with one silence of 40 minutes: one gap of 3 missed steps (not a gap
    at every step, as a fixed 120 s interval made of them)."""
    times = [T0 + 600 * k for k in range(20)]
    times += [times[-1] + 2400 + 600 * k for k in range(10)]
    pm = varying(len(times))
    got = run(write(tmp_path / "p.jsonl", pairs(times, pm)))
    gaps = [e for e in got["events"] if e["event"] == "gap"]
    assert [(e["seconds"], e["missed"]) for e in gaps] == [(2400, 3)]


def test_gaps_at_2_minutes_with_jitter(tmp_path):
    """2-minute polls whose `last_seen` jitters (steps 92 s to 148 s) and one silence of 10
    minutes: one gap of 4 missed steps, none from the jitter."""
    steps = [148, 92, 147, 95, 147, 120, 118, 125, 100, 140, 121, 119, 600, 120, 117, 126]
    times = [T0]
    for step in steps:
        times.append(times[-1] + step)
    pm = varying(len(times))
    got = run(write(tmp_path / "p.jsonl", pairs(times, pm)))
    gaps = [e for e in got["events"] if e["event"] == "gap"]
    assert [(e["seconds"], e["missed"]) for e in gaps] == [(600, 4)]


# --- flatline --------------------------------------------------------------------------------


def flatline_rows(step: int, frozen: int) -> list[tuple[int, float, float]]:
    """10 moving readings, then `frozen` readings whose PM repeats the 10th's, then 3 moving."""
    pm = varying(13, seed=3)
    values = pm[:10] + [pm[9]] * frozen + pm[10:]
    return [(T0 + step * k, v, v) for k, v in enumerate(values)]


def flagged(got: dict[str, list], code: str) -> list[int]:
    return [k for k, r in enumerate(got["readings"]) if code in r["reasons"]]


def test_flatline_is_30_minutes_and_5_readings(tmp_path):
    """The run covers from the reading before its first (the 9th, index 8 at 10 minutes):
    - at 2 minutes, readings 9..28 hold one PM: the 15th of the run (index 23) makes 30 minutes;
    - at 10 minutes, readings 9..17 hold it: 30 minutes come at the 3rd, too few; the 5th
      (index 13) is the first flagged, until the run ends (index 17)."""
    two = run(write(tmp_path / "a.jsonl", flatline_rows(120, 19)))
    assert flagged(two, "flatline") == list(range(23, 29))
    ten = run(write(tmp_path / "b.jsonl", flatline_rows(600, 8)))
    assert flagged(ten, "flatline") == list(range(13, 18))


# --- channel zero run ------------------------------------------------------------------------


def zero_rows(step: int, zeros: int) -> list[tuple[int, float, float]]:
    """5 readings on both channels, `zeros` with channel A at 0 while B reads 1.0 (below the
    2 µg/m³ that makes A dead at once), then 2 on both."""
    return [
        (T0 + step * k, a, b)
        for k, (a, b) in enumerate([(1.2, 1.1)] * 5 + [(0.0, 1.0)] * zeros + [(1.3, 1.2)] * 2)
    ]


def test_channel_zero_run_is_30_minutes_and_15_readings(tmp_path):
    """A at 0 from index 5: at 1 minute 30 minutes take 30 readings (index 34 on), at 2 minutes
    15 (index 19), at 10 minutes 30 minutes are 3 readings, and the 15 readings decide (index
    19) — where counting readings alone flagged index 19 at 1 minute."""
    one = run(write(tmp_path / "a.jsonl", zero_rows(60, 32)))
    assert flagged(one, "channel_zero") == list(range(34, 37))
    two = run(write(tmp_path / "b.jsonl", zero_rows(120, 17)))
    assert flagged(two, "channel_zero") == list(range(19, 22))
    ten = run(write(tmp_path / "c.jsonl", zero_rows(600, 17)))
    assert flagged(ten, "channel_zero") == list(range(19, 22))


# --- the detector's hold-off -----------------------------------------------------------------


def held_off(scores: list[float | None], times: list[int], seconds: float) -> list[float | None]:
    """The hold-off, written out: after an alarm (a score above the ensemble's threshold) the
    scores of the next `seconds` are multiplied by the threshold, unless one is ten times rarer
    (1 − score) than the alarm that started it: that one alarms again and restarts the span."""
    threshold, out = EnsembleDetector.threshold, []
    until, rarity = -math.inf, 1.0
    for score, time in zip(scores, times, strict=True):
        if score is None:
            out.append(None)
            continue
        if time < until and (1.0 - score) * 10.0 > rarity:
            out.append(score * threshold)
            continue
        if time < until or score > threshold:
            until, rarity = time + seconds, 1.0 - score
        out.append(score)
    return out


@pytest.mark.parametrize("step", (120, 600))
def test_the_hold_off_is_an_hour(tmp_path, step):
    """The flow's scores are the ensemble's raw scores (a twin with no hold-off, fed the same
    PM) held off for an hour after each alarm: 30 readings at 2 minutes, 6 at 10."""
    rng = random.Random(step + 1)
    pm = [round(8.0 * rng.lognormvariate(0, 0.25), 1) for _ in range(500)]
    for k in range(150, 500, 23):  # puffs: a reading or a few well above the usual
        for j in range(rng.choice((1, 2, 8))):
            if k + j < len(pm):
                pm[k + j] = round(pm[k + j] * rng.uniform(5, 40), 1)
    times = [T0 + step * k for k in range(len(pm))]
    got = run(write(tmp_path / "p.jsonl", pairs(times, pm)))
    raw = hst_ensemble("pm2.5_cf_1", holdoff=0)
    scores = [raw.score_then_learn({"pm2.5_cf_1": v})[0] for v in pm]
    want = held_off(scores, times, 3600)
    assert [r["score"] for r in got["readings"]] == want
    pairs_ = zip(want, scores, strict=True)
    held = sum(w is not None and s is not None and w != s for w, s in pairs_)
    assert held > 10  # alarms were held off
