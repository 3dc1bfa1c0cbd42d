"""`core.dead_letters.json_safe`: any raw input becomes a JSON value that strict JSON, UTF-8 and
every sink can write, bounded in depth and size, and plain values are kept as they are."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.dead_letters import RAW_DEPTH, RAW_LIMIT, TOO_DEEP, Prefix, dead_letter_record, json_safe
from core.json_lines import to_line


class Opaque:
    def __str__(self) -> str:
        return "an opaque object"


def deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def cycle():
    value: list = [1]
    value.append(value)
    return value


ODD = {
    "NaN": float("nan"),
    "infinities": [float("inf"), -math.inf],
    "numpy NaN": np.float64("nan"),
    "bytes not UTF-8": b"caf\xe9 \x00",
    "bytearray": bytearray(b"\xff\xfe"),
    "memoryview": memoryview(b"abc"),
    "lone surrogate": "a\ud800b",
    "surrogate key": {"k\udce9": 1},
    "tuple keys": {(1, 2): "x", None: 1, 2.5: 2},
    "tuple": (1, "two", None),
    "integer of 5,000 digits": 10**5000,
    "nested 100 deep": deep(100),
    "a cycle": cycle(),
    "an object": Opaque(),
    "numpy array": np.array([1.0, np.nan]),
    "huge text": "z" * 100_000,
    "huge bytes": b"\x80" * 100_000,
    "huge structure": [list(range(100))] * 1000,
    "a prefix": Prefix(b"\xff" * 10_000, 10**9),
}


@pytest.mark.parametrize("name", ODD)
def test_every_raw_value_writes_as_strict_json_and_utf8(name):
    safe = json_safe(ODD[name])
    text = json.dumps(safe, allow_nan=False, ensure_ascii=False)  # raises on NaN, odd keys
    text.encode("utf-8")  # raises on lone surrogates
    assert json.loads(text) == safe
    # bounded: an undecodable byte kept is written as \\xNN, 5 characters of JSON at most
    assert len(to_line(dead_letter_record("why", "where", ODD[name]))) < 5 * RAW_LIMIT + 100


def test_what_each_odd_value_becomes():
    assert json_safe(ODD["infinities"]) == ["Infinity", "-Infinity"]
    assert json_safe(ODD["numpy NaN"]) == "NaN"
    assert json_safe(ODD["bytes not UTF-8"]) == "caf\\xe9 \x00"
    assert json_safe(ODD["lone surrogate"]) == "a\\ud800b"
    assert json_safe(ODD["tuple keys"]) == {"(1, 2)": "x", "None": 1, "2.5": 2}
    assert json_safe(ODD["integer of 5,000 digits"]) == "[16610-bit integer]"
    assert json_safe(ODD["a cycle"])[0] == 1
    assert json_safe(ODD["huge text"]) == {"prefix": "z" * RAW_LIMIT, "characters": 100_000}
    assert json_safe(ODD["huge bytes"]) == {"prefix": "\\x80" * RAW_LIMIT, "bytes": 100_000}
    assert json_safe(ODD["a prefix"]) == {"prefix": "\\xff" * RAW_LIMIT, "bytes": 10**9}
    huge = json_safe(ODD["huge structure"])
    assert huge["characters"] == len(to_line(ODD["huge structure"]))
    assert huge["prefix"] == to_line(ODD["huge structure"])[:RAW_LIMIT]
    inner = json_safe(ODD["nested 100 deep"])
    for _ in range(RAW_DEPTH):
        inner = inner[0]
    assert inner == TOO_DEEP


def test_plain_json_values_are_kept_as_they_are():
    row = [7, 1775001579, 37.9, None, "name", True, {"a": [1, 2.5]}]
    assert json_safe(row) == row
    assert json_safe("a line") == "a line"
    assert dead_letter_record("r", "o", row) == {"reason": "r", "origin": "o", "raw": row}
