"""The column path's quality-control stages against the per-reading rules they twin (the oracle):
`FlatlineColumns` against `preparation.flatline.Flatline`, `ChannelColumns` against
`preparation.channels.ChannelAgreement`, chained as `SensorLogic.on_batch` chains them, on random
streams (`tests/qc_streams.py`): every value bit for bit, every flag, reason (in order) and
count, the per-slot state too, with pickle round-trips mid-stream."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from columns.channels import ChannelColumns
from columns.flatline import FlatlineColumns
from preparation.channels import ChannelAgreement
from preparation.flatline import Flatline
from tests.qc_streams import Row, same_float, stream, work_of


def qc_options(seed: int) -> tuple[int, ChannelAgreement]:
    """A random flatline length and channel rule (the template the flow copies per sensor)."""
    rng = np.random.default_rng(seed + 1000)
    readings = int(rng.choice([2, 3, 5, 15]))
    template = ChannelAgreement(
        float(rng.choice([5.0, 2.0, 0.0])),
        float(rng.choice([0.7, 0.3])),
        float(rng.choice([2.0, 0.5])),
        int(rng.choice([1, 3, 15])),
        use_flags=bool(rng.random() < 0.8),
        history=bool(rng.random() < 0.8),
    )
    return readings, template


def per_reading(rows: list[Row], rules: dict, readings: int, template: ChannelAgreement,
                counts: dict) -> list[tuple[dict, dict, list]]:  # fmt: skip
    """The oracle: `SensorLogic.on_batch`'s flatline and channel steps, reading by reading."""
    out = []
    for row in rows:
        if row.sensor not in rules:
            rules[row.sensor] = (Flatline(readings), template.copy())
        flatline, channels = rules[row.sensor]
        raw, flags, reasons = row.values, {}, []
        if not row.placeholder:
            flatline.apply(raw, flags, reasons, counts)
        raw = channels.apply(raw, flags, reasons, counts)
        out.append((raw, flags, reasons))
    return out


def check_call(work, want: list[tuple[dict, dict, list]]) -> None:
    fields = work.fields
    for i, (values, flags, reasons) in enumerate(want):
        assert [f for f in fields if f in values] == list(values)
        for j, name in enumerate(fields):
            # a field the rule added to other rows is NaN where the per-reading row has no key
            assert same_float(values.get(name), work.values[i, j]), (i, name)
        assert work.flags.get(i, {}) == flags and list(work.flags.get(i, {})) == list(flags)
        assert work.reasons.get(i, []) == reasons


def check_state(flatline: FlatlineColumns, channels: ChannelColumns, rules, slot_of) -> None:
    for sensor, (rule, check) in rules.items():
        slot = slot_of[sensor]
        assert (flatline.run_pm[slot], flatline.run_all[slot]) == (rule.run_pm, rule.run_all)
        assert same_float(check.last, channels.last[slot])
        assert (channels.zeros_a[slot], channels.zeros_b[slot]) == (check.zeros_a, check.zeros_b)


def run_both(calls: list[list[Row]], slots: int, seed: int) -> dict[str, int]:
    readings, template = qc_options(seed)
    rng = np.random.default_rng(seed + 2000)
    flatline, channels = FlatlineColumns(readings), ChannelColumns.of(template)
    rules: dict = {}
    slot_of: dict[int, int] = {}
    want_counts: dict[str, int] = {}
    got_counts: dict[str, int] = {}
    for number, rows in enumerate(calls):
        want = per_reading(rows, rules, readings, template, want_counts)
        work, at = work_of(rows, slot_of)
        flatline.grow(len(slot_of))
        channels.grow(len(slot_of))
        flatline.apply(work, at, got_counts)
        channels.apply(work, at, got_counts)
        check_call(work, want)
        assert got_counts == want_counts, number
        if rng.random() < 0.1:  # recovery: the shard's state from its pickle, the oracle's copy
            flatline, channels = pickle.loads(pickle.dumps((flatline, channels)))
            rules = {k: (pickle.loads(pickle.dumps(f)), c.copy()) for k, (f, c) in rules.items()}
    check_state(flatline, channels, rules, slot_of)
    return want_counts


@pytest.mark.parametrize("seed", range(40))
def test_flatline_and_channels_equal_the_per_reading_rules(seed):
    counts = run_both(*stream(seed, sensors=30, calls=120), seed)
    assert sum(counts.values()) > 0  # the stream made the rules fire


def test_every_rule_fires_across_the_seeds():
    """The streams reach every code (so the equivalence above covers each)."""
    seen: dict[str, int] = {}
    for seed in range(40):
        for tag, n in run_both(*stream(seed, sensors=30, calls=120), seed).items():
            seen[tag] = seen.get(tag, 0) + n
    assert set(seen) == {
        "flatline",
        "channels:channel_disagreement",
        "channels:channel_zero",
        "channels:channel_downgraded",
    }


@pytest.mark.parametrize("seed", [100, 101])
def test_big_calls_of_5000_rows_and_single_rows(seed):
    run_both(*stream(seed, sensors=5000, calls=30, big=4), seed)


def test_a_template_copied_keeps_every_option():
    rule = ChannelAgreement(1.0, 0.2, 3.0, 4, test_field="pm1.0_cf_1", fields=("pm1.0_cf_1",),
                            use_flags=False, history=False)  # fmt: skip
    twin = ChannelColumns.of(rule)
    for name in ("abs_limit", "rel_limit", "zero_other", "zero_run", "test_a", "test_b", "fields",
                 "use_flags", "history"):  # fmt: skip
        assert getattr(twin, name) == getattr(rule, name)
