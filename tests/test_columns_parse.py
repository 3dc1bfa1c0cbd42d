"""`columns.parse.parse_columns` against `sources.payload.parse_payload` (the oracle): the same
readings (sensor, time, values bit for bit, text) and the same dead letters (reason, the very
raw object, origin), in row order, for every shard, on the bad-input corpus, random payloads of
good and broken rows, and the real PurpleAir snapshot."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from columns.parse import parse_columns
from core.readings import DeadLetter, Reading
from sources.payload import PayloadError, decode_line, parse_payload
from sources.purpleair import sensor_owner
from tests import corpus

SNAPSHOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SNAPSHOT = SNAPSHOT / "purpleair_snapshot.json"


def _value(v: float | None) -> str | None:
    return None if v is None else float(v).hex()  # bit for bit, -0.0 apart from 0.0


def _reading(r: Reading) -> tuple:
    values = tuple((k, _value(v)) for k, v in r.values.items())
    return (r.sensor_index, r.time, values, tuple(r.text.items()))


def _from_columns(parsed, i: int) -> tuple:
    c = parsed.columns
    values = tuple(
        (name, None if np.isnan(v) else float(v).hex())
        for name, v in zip(c.fields, c.values[i].tolist(), strict=True)
    )
    text = () if c.text is None else tuple(c.text[i].items())
    return (int(c.sensors[i]), int(c.times[i]), values, text)


def _dead(d: DeadLetter) -> tuple:
    return (d.reason, id(d.raw), d.origin)


def check_same(payload: Any, shards: int = 1, origin: str = "polls.jsonl:3") -> int:
    """Compare every shard's columns with parse_payload's items; return the rows seen."""
    seen = 0
    for shard in range(shards):
        owner = None if shards == 1 else sensor_owner(shard, shards)
        want = list(parse_payload(payload, origin=origin, owner=owner))
        got = parse_columns(payload, origin=origin, owner=owner)
        c = got.columns
        assert c.values.shape == (len(c), len(c.fields))
        assert c.sensors.dtype == c.times.dtype == np.int64 and c.values.dtype == np.float64
        assert len(got.rows) == len(c) and len(got.dead_rows) == len(got.dead)
        assert c.origin == origin
        merged = sorted(
            [(int(r), 1, _from_columns(got, i)) for i, r in enumerate(got.rows)]
            + [(r, 0, _dead(d)) for r, d in zip(got.dead_rows, got.dead, strict=True)]
        )
        expected = [_dead(x) if isinstance(x, DeadLetter) else _reading(x) for x in want]
        assert [item for _, _, item in merged] == expected
        seen += len(want)
    return seen


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_corpus_lines(shards: int) -> None:
    """Every line of the bad-input corpus that decodes, and every shipped poll, per shard."""
    decoded = 0
    lines = [kind.line for kind in corpus.kinds()]
    lines += corpus.SHIPPED.read_bytes().splitlines()[:40]
    for line in lines:
        try:
            payload = decode_line(line)
        except PayloadError:
            continue
        decoded += 1
        check_same(payload, shards)
    assert decoded > 70


WRONG = [
    "7", "", "x" * 50, True, False, {"v": 1}, [1], [], None, float("nan"), float("inf"),
    -float("inf"), 2**63, 2**64, -(2**63) - 1, 10**400, -5, 7.0, 1.5, -0.0, 2**53 + 1,
    1e308, 5e-324, "\ud800", "caf\u00e9",
]  # fmt: skip


def random_payload(rng: random.Random) -> dict[str, Any]:
    """A payload of good rows with broken cells, rows and envelopes mixed in at random."""
    fields = list(corpus.FIELDS)
    if rng.random() < 0.3:
        fields.insert(rng.randrange(len(fields) + 1), "name")
    if rng.random() < 0.2:
        fields.remove("last_seen")
    if rng.random() < 0.3:
        rng.shuffle(fields)
    rows: list[Any] = []
    for _ in range(rng.randrange(0, 60)):
        row: list[Any] = []
        for name in fields:
            if name == "sensor_index":
                row.append(rng.randrange(0, 50) if rng.random() < 0.9 else rng.getrandbits(63))
            elif name == "last_seen":
                row.append(corpus.STAMP - rng.randrange(0, 600))
            elif name == "name":
                row.append(rng.choice(["a", "Ünïcode", None, ""]))
            else:
                row.append(rng.choice([None, rng.uniform(-50, 1200), rng.randrange(-5, 900)]))
        roll = rng.random()
        if roll < 0.25:
            row[rng.randrange(len(row))] = rng.choice(WRONG)
        elif roll < 0.28:
            row = row[: rng.randrange(len(row))] if rng.random() < 0.5 else row + [1]
        elif roll < 0.30:
            row = rng.choice([None, 5, "row", {"sensor_index": 1}])
        rows.append(row)
    payload: dict[str, Any] = {"fields": fields, "data": rows, "data_time_stamp": corpus.STAMP}
    if rng.random() < 0.05:
        payload["data_time_stamp"] = rng.choice(["x", 1.5, None, 10**12])
    if rng.random() < 0.03:
        del payload["fields"]
    return payload


@pytest.mark.parametrize("seed", range(60))
def test_random_payloads(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        payload = random_payload(rng)
        check_same(payload, rng.choice([1, 2, 3]))


def test_clean_payload_all_rows_fast_and_equal() -> None:
    """A large clean payload (every kind of good value, nulls): one reading per row."""
    rng = random.Random(5)
    fields = corpus.FIELDS
    rows = [
        [i, corpus.STAMP - i % 97]
        + [rng.choice([None, 2**53 + 1, -0.0, 5e-324, 1e308, rng.random()]) for _ in fields[2:]]
        for i in range(3000)
    ]
    payload = {"fields": fields, "data": rows, "data_time_stamp": corpus.STAMP}
    assert check_same(payload, 1) == 3000
    assert check_same(payload, 2) == 3000
    parsed = parse_columns(payload)
    assert len(parsed.columns) == 3000 and not parsed.dead


def test_json_fallback_values() -> None:
    """Lines only the standard library decodes (NaN tokens, 400-digit ints) give Python values
    beyond what orjson makes; the columns still agree."""
    row = corpus.good_row()
    text = json.dumps({"fields": corpus.FIELDS, "data": [row, row], "data_time_stamp": 5})
    for bad in ("NaN", "Infinity", "9" * 400, "-" + "9" * 30):
        line = text.replace(", 31,", f", {bad},", 1).encode()
        check_same(decode_line(line), 2)


@pytest.mark.skipif(not SNAPSHOT.is_file(), reason=f"{SNAPSHOT} is not there")
def test_real_snapshot() -> None:
    payload = decode_line(SNAPSHOT.read_bytes())
    assert check_same(payload, 1) == len(payload["data"])
    check_same(payload, 2)
