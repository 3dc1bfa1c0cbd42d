"""The column path's validation, imputation and EPA stages against the per-reading stages they
twin (`RangeValidator.apply`, `WindowImputer.impute_one`, `EpaCorrection.apply`): random streams
over many seeds, every value bit for bit, every flag, reason, mask and count."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

from columns.epa import EpaColumns
from columns.exact import correctly_rounded_sums
from columns.impute import ImputeColumns
from columns.validate import ValidateColumns
from imputers.window import WindowImputer
from preparation.correction import EPA_FIELD, EpaCorrection
from preparation.reasons import FLATLINE, OUT_OF_RANGE
from preparation.validation import DEFAULT_RANGES, RangeValidator
from tests.column_streams import Slots, bits, stream, work_of

FIELDS = ("pm1.0_cf_1", "pm2.5_cf_1", "humidity", "temperature", "pressure", "rssi")


def sensor_value(rng: random.Random, name: str, t: int) -> float:
    """Mostly plausible values with one or two decimals, sometimes far out of range."""
    if rng.random() < 0.05:
        return rng.choice((-1e300, -50.0, -0.0, 1e6, 2000.0, 1e300, 5e-324))
    centre = {"humidity": 50.0, "temperature": 70.0, "pressure": 1000.0}.get(name, 20.0)
    return round(rng.gauss(centre, centre * 0.6 + 5 * math.sin(t / 7)), rng.choice((1, 2, 6)))


def twin_rows(work, fields):
    """Each row's values as the per-reading path holds them (None for missing)."""
    return [
        {f: (None if np.isnan(v) else v) for f, v in zip(fields, row, strict=True)}
        for row in work.values[:, : len(fields)].tolist()
    ]


def assert_same_values(work, want: list[dict], names):
    for name in names:
        col = work.column(name)
        got = [bits(v) for v in work.values[:, col].tolist()]
        assert got == [bits(w.get(name)) for w in want], name


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_validation_equals_the_range_validator(seed):
    rng = random.Random(seed)
    ranges = dict(DEFAULT_RANGES)
    if seed % 3 == 1:
        ranges = {"humidity": (0, 100), "pm2.5_cf_1": (0.5, 250.0), "rssi": (-90, -10)}
    rule, twin = RangeValidator(ranges), ValidateColumns.of(RangeValidator(ranges))
    counts_want, counts_got = {}, {}
    polls = stream(seed, FIELDS, sensor_value, big=3000 if seed % 4 == 0 else 0)
    for t, rows in enumerate(polls):
        if t == len(polls) // 2:
            twin = pickle.loads(pickle.dumps(twin))
        work = work_of(rows, FIELDS)
        want_flags, want_reasons, want_values = {}, {}, []
        for i, (_, values) in enumerate(rows):
            flags, reasons = {}, []
            if rng.random() < 0.2:  # flatline ran before and said so
                flags["flatline"], reasons[:] = "stuck", [FLATLINE]
                work.flags_of(i)["flatline"] = "stuck"
                work.reasons_of(i).append(FLATLINE)
            checked = rule.apply(values, flags, counts_want)
            if checked is not values:
                reasons.append(OUT_OF_RANGE)
            want_values.append(checked)
            if flags:
                want_flags[i] = flags
            if reasons:
                want_reasons[i] = reasons
        twin.apply(work, np.arange(len(rows)), counts_got)
        assert_same_values(work, want_values, FIELDS)
        assert work.flags == want_flags
        assert {r: list(f) for r, f in work.flags.items()} == {  # each row's flags in order
            r: list(f) for r, f in want_flags.items()
        }
        assert work.reasons == want_reasons
    assert counts_got == counts_want
    assert any(k.startswith("invalid:") for k in counts_want)  # the streams do break ranges


# --- imputation ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["mean", "median", "last"])
@pytest.mark.parametrize("seed", range(10))
def test_imputation_equals_the_window_imputer(seed, strategy):
    rng = random.Random(seed)
    window = rng.choice((1, 2, 3, 10, 10, 17))
    impute = ["humidity", "temperature", "pm1.0_cf_1", "pressure"]
    if seed % 5 == 2:
        impute.append("voc")  # not in the payload: only ever missing
    rng.shuffle(impute)
    twin = ImputeColumns(impute, window, strategy)
    oracles: dict[int, WindowImputer] = {}
    slots = Slots()
    polls = stream(seed, FIELDS, sensor_value, polls=80, big=5000 if seed % 3 == 0 else 0)
    for t, rows in enumerate(polls):
        if t in (17, 55):  # recovery: both sides pickled and loaded mid-stream
            twin = pickle.loads(pickle.dumps(twin))
            oracles = pickle.loads(pickle.dumps(oracles))
        at = slots(rows)
        twin.grow(len(slots.of))
        work = work_of(rows, FIELDS)
        twin.apply(work, at, {})
        want = []
        for i, (sensor, values) in enumerate(rows):
            imputer = oracles.setdefault(sensor, WindowImputer(impute, window, strategy))
            filled, imputed, missing = imputer.impute_one(values)
            want.append(filled)
            for name in impute:
                col = work.column(name)
                assert work.imputed[i, col] == (name in imputed), (t, i, name)
                assert work.missing[i, col] == (name in missing), (t, i, name)
        assert_same_values(work, want, impute)
        assert_same_values(work, want, FIELDS)  # the other fields are untouched


def test_imputation_keeps_a_long_stream_exact():
    """30,000 readings of one sensor with values that make a naive running sum drift."""
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 30_000) * 10.0 ** rng.integers(-8, 9, 30_000)
    values[rng.random(30_000) < 0.3] = np.nan
    twin, oracle = ImputeColumns(["x"], 10), WindowImputer(["x"], 10)
    twin.grow(1)
    got, want = [], []
    for start in range(0, len(values), 1):
        work = work_of([(1, {"x": None if np.isnan(v) else float(v)})
                        for v in values[start : start + 1]], ["x"])
        twin.apply(work, np.array([0]), {})
        got.append(bits(work.values[0, 0]))
        want.append(bits(oracle.impute_one({"x": None if np.isnan(values[start]) else
                                             float(values[start])})[0]["x"]))
    assert got == want


def test_grow_keeps_state_and_starts_new_slots_empty():
    twin = ImputeColumns(["x"], 3)
    twin.grow(2)
    for v in (1.0, 2.0):
        twin.apply(work_of([(5, {"x": v}), (6, {"x": None})], ["x"]), np.array([0, 1]), {})
    twin.grow(500)
    work = work_of([(5, {"x": None}), (6, {"x": None}), (7, {"x": None})], ["x"])
    twin.apply(work, np.array([0, 1, 499]), {})
    assert work.values[:, 0].tolist()[0] == 1.5
    assert work.missing[:, 0].tolist() == [False, True, True]


# --- the exact sums behind the imputer's re-sync ------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_correctly_rounded_sums_equal_math_fsum(seed):
    """Decimal readings, huge and tiny exponents, exact cancellations and ties: every row equals
    `math.fsum` of it (math.fsum is the oracle), sign of zero included."""
    rng = np.random.default_rng(seed)
    m = 2000
    for n in (2, 3, 10, 72):
        cases = [
            np.round(rng.uniform(-40, 185, (m, n)), 1),
            rng.normal(0, 1, (m, n)) * 10.0 ** rng.integers(-30, 30, (m, n)),
            rng.normal(0, 1, (m, n)) * 2.0 ** rng.integers(-1074, 1000, (m, n)),
            rng.integers(-3, 3, (m, n)) * 0.0,  # zeros of both signs
        ]
        ties = np.zeros((m, n))
        ties[:, 0] = rng.choice([1.0, 2.0, 0.5, -1.0], m)
        ties[:, 1] = rng.choice([2.0**-53, -(2.0**-53), 2.0**-54, -(2.0**-54)], m)
        if n > 2:
            ties[:, 2] = rng.choice([0.0, 2.0**-106, -(2.0**-106), 2.0**-105], m)
        cases.append(ties)
        for block in cases:
            want = np.array([math.fsum(r) for r in block.tolist()])
            got = correctly_rounded_sums(np.ascontiguousarray(block))
            assert got.view(np.int64).tolist() == want.view(np.int64).tolist()


# --- the EPA correction -------------------------------------------------------------------


def epa_inputs(rng: random.Random, name: str, t: int) -> float:
    if name == "pm2.5_cf_1":
        return rng.choice(
            (
                round(rng.uniform(0, 1500), rng.choice((1, 3))),
                rng.choice((0.0, 250.0, 570.0, 611.0, 569.999, 610.9999, 1e6, -0.0)),
                round(rng.uniform(560, 620), 2),
                round(rng.expovariate(0.05), 2),
            )
        )
    return round(rng.uniform(0, 100), 1)


@pytest.mark.parametrize(
    ("extended", "max_pm"), [(True, 250.0), (False, 250.0), (False, 600.0), (False, 1e9)]
)
@pytest.mark.parametrize("seed", range(6))
def test_epa_equals_the_epa_correction(seed, extended, max_pm):
    rng = random.Random(seed)
    rule = EpaCorrection(max_pm, extended)
    twin = EpaColumns.of(rule)
    fields = ("humidity", "pm2.5_cf_1", "temperature") if seed % 2 else ("pm2.5_cf_1", "humidity")
    if seed == 5:
        fields = ("humidity",)  # no pm2.5_cf_1 at all
    counts_want, counts_got = {}, {}
    for rows in stream(seed, fields, epa_inputs, big=2000):
        work = work_of(rows, fields)
        want_flags, want_values, want_masks = {}, [], []
        for i, (_, values) in enumerate(rows):
            imputed = [f for f in fields if rng.random() < 0.3]
            for f in imputed:
                work.imputed[i, work.column(f)] = True
            values, missing, flags = dict(values), [], {}
            rule.apply(values, imputed, missing, flags, counts_want)
            want_values.append(values[EPA_FIELD])
            want_masks.append((EPA_FIELD in imputed, EPA_FIELD in missing))
            if flags:
                want_flags[i] = flags
        twin.apply(work, np.arange(len(rows)), counts_got)
        col = work.column(EPA_FIELD)
        assert [bits(v) for v in work.values[:, col].tolist()] == list(map(bits, want_values))
        masks = zip(work.imputed[:, col].tolist(), work.missing[:, col].tolist(), strict=True)
        assert list(masks) == want_masks
        assert work.flags == want_flags
    assert counts_got == counts_want
