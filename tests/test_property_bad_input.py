"""Property: random bytes, and random mutations of real payload lines, never stop the flow, every
dead letter is written as strict JSON, and rows in = readings + dead letters.

Rows in is counted by an independent reading of each line with the standard library: a blank
line is no row; a line that is not UTF-8 JSON, not an object or without a `data` list is one
row (one dead letter); a payload is one row per element of `data` (an empty `data` is no row
when the envelope is sound, else one dead letter for the payload). Deterministic: hypothesis
derandomized, a bounded number of examples.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bytewax.testing import TestingSink, run_main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflows.air_quality import build_flow
from tests.corpus import SHIPPED, STAMP, doc, dumps, good_row

EPOCH_RANGE = (-62135596800, 253402300799)  # years 1 to 9999, as the README says a time is
REAL = SHIPPED.read_bytes().split(b"\n")[:2]
SMALL = dumps(doc([good_row(), good_row(990_002, STAMP - 10)]))
BASES = [*REAL, SMALL]
SETTINGS = settings(
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def sound_envelope(payload: dict) -> bool:
    """The README's envelope rule: `fields` a list of distinct names, a time for every row."""
    fields, stamp = payload.get("fields"), payload.get("data_time_stamp")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        return False
    if len(set(fields)) != len(fields):
        return False
    if stamp is not None and (
        type(stamp) is not int or not EPOCH_RANGE[0] <= stamp <= EPOCH_RANGE[1]
    ):
        return False
    return "last_seen" in fields or stamp is not None


def rows_in(line: bytes) -> int:
    if not line.strip():
        return 0
    try:
        payload = json.loads(line.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        return 1
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return 1
    if payload["data"]:
        return len(payload["data"])
    return 0 if sound_envelope(payload) else 1


def strict(line: str):
    def refuse(token):
        raise ValueError(token)

    return json.loads(line, parse_constant=refuse)


def run_lines(lines: list[bytes]) -> None:
    """Run the whole flow (2 sensor shards, 1 worker) over the lines; check the property."""
    with tempfile.TemporaryDirectory() as tmp:
        path, dead = Path(tmp) / "p.jsonl", Path(tmp) / "dead.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        totals, readings = [], []
        flow = build_flow(
            str(path),
            output=TestingSink([]),
            readings=TestingSink(readings),
            dead_letters=str(dead),
            events=TestingSink([]),
            totals=TestingSink(totals),
            progress=None,
        )
        run_main(flow)
        letters = [strict(line) for line in dead.read_text().splitlines()] if dead.exists() else []
        want = sum(rows_in(line) for line in path.read_bytes().split(b"\n")[:-1])
    got = totals[0] if totals else {}
    assert got.get("readings", 0) == len(readings)
    assert got.get("dead_letters", 0) == len(letters)
    assert len(readings) + len(letters) == want
    assert all(set(d) == {"reason", "origin", "raw"} for d in letters)


@SETTINGS
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_random_bytes_never_stop_the_flow(lines):
    run_lines([REAL[0], *(line.replace(b"\n", b" ") for line in lines), REAL[1]])


#: JSON texts to put where a value belongs: non-finite, huge, deep, of every wrong type.
TOKENS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1e-999", b"9" * 400,
    b"18446744073709551616", b"-5", b"7.0", b"true", b"null", b'"x"', b'"\\ud800"',
    b"[]", b"{}", b"[" * 2000 + b"]" * 2000, b'"' + b"y" * 5000 + b'"', b"0", b"-0.0",
]  # fmt: skip
PLACEHOLDER = "\x01TOKEN\x01"


@st.composite
def mutated(draw) -> bytes:
    """A real payload line with 0 to 3 edits of its structure (a value of a row, an envelope
    field, a row's length, set to any of `TOKENS`), then 0 to 3 edits of its bytes (delete,
    insert, replace, repeat, cut)."""
    payload = json.loads(draw(st.sampled_from(BASES)))
    token = draw(st.sampled_from(TOKENS))
    for _ in range(draw(st.integers(0, 3))):
        rows = payload.get("data")
        where = draw(st.sampled_from(["value", "envelope", "row"]))
        if where == "value" and isinstance(rows, list) and rows and isinstance(rows[0], list):
            row = rows[draw(st.integers(0, len(rows) - 1))]
            if isinstance(row, list) and row:
                row[draw(st.integers(0, len(row) - 1))] = PLACEHOLDER
        elif where == "envelope":
            key = draw(st.sampled_from(["fields", "data", "data_time_stamp", "api_version"]))
            if draw(st.booleans()):
                payload[key] = PLACEHOLDER
            else:
                payload.pop(key, None)
        elif isinstance(rows, list) and rows:
            rows[draw(st.integers(0, len(rows) - 1))] = [PLACEHOLDER] * draw(st.integers(0, 13))
    line = bytearray(json.dumps(payload).encode().replace(json.dumps(PLACEHOLDER).encode(), token))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(line)))
        span = draw(st.integers(0, 40))
        edit = draw(st.sampled_from(["delete", "insert", "replace", "repeat", "cut"]))
        if edit == "delete":
            del line[at : at + span]
        elif edit == "insert":
            line[at:at] = draw(st.binary(min_size=1, max_size=20))
        elif edit == "replace":
            line[at : at + 1] = draw(
                st.sampled_from([b'"', b",", b"[", b"]", b"}", b"\xff", b"\x00"])
            )
        elif edit == "repeat":
            line[at:at] = line[at : at + span]
        else:
            del line[at:]
    return bytes(line).replace(b"\n", b" ")


@SETTINGS
@given(st.lists(mutated(), min_size=1, max_size=4))
def test_mutated_payload_lines_never_stop_the_flow(lines):
    run_lines([REAL[0], *lines, REAL[1]])
