"""The column stages along time: a batch that holds a sensor many times (a long history of few
sensors) against the per-reading rules and the per-sensor classes (the oracles).

The streams of `tests/qc_streams.py` and `tests/column_streams.py` are calls of distinct
sensors; here runs of consecutive calls are joined into one call (when their field layouts
agree), so a sensor appears in one call up to dozens of times, its rows in order, with
placeholders, gaps and late rows among them. Each stage takes such a call in one `apply`
(`ALONG`), and must give every value, flag, reason, count and record of the oracle, which
takes the rows one by one. Then the whole shard step (`ShardLogic`): the same rows in batches
of few sensors give the outputs of the same rows one batch per row.
"""

from __future__ import annotations

import numpy as np
import pytest

from columns.channels import ChannelColumns
from columns.flatline import FlatlineColumns
from columns.rounds import Along, takes_repeats
from tests import test_columns_qc as qc
from tests.qc_streams import Row, epa_stream, fault_stream, stream


def joined(calls: list[list[Row]], seed: int, longest: int = 40) -> list[list[Row]]:
    """Runs of up to `longest` consecutive calls of one layout, each run as one call."""
    rng = np.random.default_rng(seed + 9000)
    out: list[list[Row]] = []
    layout = None
    left = 0
    for rows in calls:
        keys = {tuple(row.values) for row in rows}
        if len(keys) > 1:
            raise AssertionError("a call of several layouts")
        key = next(iter(keys), layout)
        if out and key == layout and left > 0:
            out[-1] = out[-1] + rows
            left -= 1
        else:
            out.append(list(rows))
            layout, left = key, int(rng.integers(0, longest))
    return out


def repeats(calls: list[list[Row]]) -> int:
    """The most rows one sensor has in one call."""
    most = 0
    for rows in calls:
        sensors = [row.sensor for row in rows]
        if sensors:
            most = max(most, max(sensors.count(s) for s in set(sensors)))
    return most


def test_the_stages_computed_along_time_say_so():
    assert takes_repeats(FlatlineColumns()) and takes_repeats(ChannelColumns())


@pytest.mark.parametrize("seed", range(30))
def test_flatline_and_channels_along_time_equal_the_per_reading_rules(seed):
    calls, sensors = stream(seed, sensors=int(np.random.default_rng(seed).integers(1, 6)),
                            calls=300)  # fmt: skip
    calls = joined(calls, seed)
    assert repeats(calls) > 5
    qc.run_both(calls, sensors, seed)


def test_every_rule_fires_along_time():
    seen: dict[str, int] = {}
    for seed in range(8):
        calls, sensors = stream(seed, sensors=3, calls=300)
        for tag, n in qc.run_both(joined(calls, seed), sensors, seed).items():
            seen[tag] = seen.get(tag, 0) + n
    assert set(seen) == {
        "flatline",
        "channels:channel_disagreement",
        "channels:channel_zero",
        "channels:channel_downgraded",
    }


def test_along_counts_and_carries_each_slot_from_its_state():
    """`Along` against a loop over the rows (its own small oracle)."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(0, 40))
        slots = rng.integers(0, 5, n)
        go_on = rng.random(n) < 0.7
        value = rng.integers(0, 100, n)
        state = rng.integers(0, 9, 5)
        along = Along(slots)
        count, held, prev = dict(enumerate(state)), dict(enumerate(state)), dict(enumerate(state))
        want_count, want_held, want_prev = [], [], []
        for i, slot in enumerate(slots.tolist()):
            count[slot] = count[slot] + 1 if go_on[i] else 0
            held[slot] = value[i] if not go_on[i] else held[slot]
            want_prev.append(prev[slot])
            prev[slot] = value[i]
            want_count.append(count[slot])
            want_held.append(held[slot])
        assert along.counter(go_on, state[slots]).tolist() == want_count
        assert along.carry(~go_on, value, state[slots]).tolist() == want_held
        assert along.previous(value, state[slots]).tolist() == want_prev
        assert sorted(set(slots[along.last].tolist())) == sorted(set(slots.tolist()))
        assert len(along.last) == len(set(slots.tolist()))


@pytest.mark.parametrize("seed", range(20))
def test_incidents_along_time_equal_the_per_reading_ones(seed):
    clear_after = (0, 120, 600, 1800)[seed % 4]
    calls = joined(fault_stream(seed, sensors=int(seed % 4) + 1, calls=300)[0], seed)
    assert repeats(calls) > 5
    assert qc.run_incidents(calls, seed, clear_after) > 0


@pytest.mark.parametrize("seed", range(20))
def test_nowcast_along_time_equals_the_per_reading_one(seed):
    calls = joined(epa_stream(seed, sensors=int(seed % 4) + 1, calls=400)[0], seed)
    assert repeats(calls) > 5
    assert qc.run_nowcast(calls, seed) > 0


def test_nowcast_of_one_sensor_a_day_at_a_time():
    """A day of 2-minute readings in one call: hours close inside the call, one after another."""
    rows = [Row(7, 1_700_000_000 + 120 * i, {"pm2.5_epa": 5.0 + (i * 7919 % 40)})
            for i in range(3 * 720)]  # fmt: skip
    assert qc.run_nowcast([rows[k : k + 720] for k in range(0, len(rows), 720)], 1) > 2000
