"""A corpus of bad payload lines: what a broken proxy, a truncated download, a firmware bug or a
hostile client sends, each with what it must become.

Every kind is one line of a JSON-lines payload file. `want` lists what the line must give, in row
order: `READING` for a row that is a good reading, or the start of a dead letter's reason. Rows
that can become readings belong to sensors that the shipped data does not have (from
`NEW_SENSOR`), so mixing the corpus into `data/polls.jsonl` leaves every shipped sensor's anomalies
as they are. Blank lines are not records (`want` is empty).

    python -m tests.corpus polls-with-bad-lines.jsonl   # data/polls.jsonl, every kind mixed in
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from data.simulate import FIELDS as SIMULATED_FIELDS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "data" / "polls.jsonl"
#: The shipped polls' fields (sensor_index, last_seen, 9 numeric fields), as simulated.
FIELDS = list(SIMULATED_FIELDS)
#: Sensors of the corpus's own rows (not in the shipped data).
NEW_SENSOR = 990_001
STAMP = 1775001600  # the shipped data's first data_time_stamp
READING = "reading"
NOT_JSON = "not JSON: "


class Kind(NamedTuple):
    """One kind of bad input: a name, the line's bytes (no newline), what it must become."""

    name: str
    line: bytes
    want: tuple[str, ...]


def good_row(sensor: int = NEW_SENSOR, last_seen: int = STAMP - 20) -> list[Any]:
    return [sensor, last_seen, 37.9, -122.1, 31, 78, 1009.1, 2.1, 3.3, 3.8, 3.3]


def doc(rows: list[Any], **envelope: Any) -> dict[str, Any]:
    return {"data_time_stamp": STAMP, "fields": FIELDS, "data": rows, **envelope}


def dumps(value: Any) -> bytes:
    """Compact JSON, with NaN and Infinity tokens where the value holds them (as json writes)."""
    return json.dumps(value, separators=(",", ":")).encode()


def with_value(position: int, value: Any) -> list[Any]:
    row = good_row()
    row[position] = value
    return row


def nested(depth: int) -> bytes:
    """A JSON array nested `depth` deep (as bytes: json.dumps cannot write it)."""
    return b"[" * depth + b"1" + b"]" * depth


def with_bytes(line: bytes, humidity: bytes) -> bytes:
    """`line` (one good row) with its humidity (31) replaced by the JSON text `humidity`."""
    return line.replace(b",31,", b"," + humidity + b",", 1)


def _wrong_types() -> Iterator[Kind]:
    """Every position of a row holding each wrong type: a string, a boolean, an object."""
    wrong = {"string": "7", "boolean": True, "object": {"v": 1}}
    for position, name in enumerate(FIELDS):
        for label, value in wrong.items():
            if name == "sensor_index":
                want = "sensor_index is "
            elif name == "last_seen":
                want = "last_seen is "
            else:
                want = f"field {name!r} is "
            yield Kind(f"{name} is a {label}", dumps(doc([with_value(position, value)])), (want,))


def kinds() -> list[Kind]:
    """The whole corpus."""
    line = dumps(doc([good_row()]))
    text_fields = ["sensor_index", "last_seen", "name", "pm1.0_cf_1"]
    text_doc = {"data_time_stamp": STAMP, "fields": text_fields}
    out = [
        # encodings, byte-order marks, bytes that are not UTF-8, NUL bytes
        Kind(
            "UTF-8 byte-order mark",
            b"\xef\xbb\xbf" + dumps(doc([good_row(NEW_SENSOR + 1)])),
            (READING,),
        ),
        Kind(
            "UTF-16 LE with BOM",
            "\ufeff".encode("utf-16-le") + line.decode().encode("utf-16-le"),
            (NOT_JSON,),
        ),
        Kind("UTF-16 BE, no BOM", line.decode().encode("utf-16-be"), (NOT_JSON,)),
        Kind("UTF-32", line.decode().encode("utf-32"), (NOT_JSON,)),
        Kind("latin-1 byte in a string", line.replace(b"37.9", b'"caf\xe9"'), (NOT_JSON,)),
        Kind("invalid start byte 0xff", b"\xff" + line, (NOT_JSON,)),
        Kind("overlong UTF-8 sequence", line.replace(b"37.9", b'"\xc0\xaf"'), (NOT_JSON,)),
        Kind(
            "surrogate encoded as UTF-8 bytes",
            line.replace(b"37.9", b'"\xed\xa0\x80"'),
            (NOT_JSON,),
        ),
        Kind(
            "lone surrogate escape in text",
            dumps({**text_doc, "data": [[NEW_SENSOR, STAMP, "\ud800", 1.0]]}),
            ("field 'name' is not valid Unicode",),
        ),
        Kind(
            "escaped NUL in text",
            dumps({**text_doc, "data": [[NEW_SENSOR + 2, STAMP - 5, "a\u0000b", 1.0]]}),
            (READING,),
        ),
        Kind("NUL bytes only", b"\x00\x00\x00", (NOT_JSON,)),
        Kind("NUL byte inside a string", line.replace(b'"data"', b'"da\x00ta"'), (NOT_JSON,)),
        Kind("NUL byte between tokens", line.replace(b",", b",\x00", 1), (NOT_JSON,)),
        # truncation and syntax
        Kind("first half of a payload", line[: len(line) // 2], (NOT_JSON,)),
        Kind("cut inside a number", line[: line.index(b"1009.1") + 4], (NOT_JSON,)),
        Kind("cut after the first key", b'{"fields"', (NOT_JSON,)),
        Kind("plain text", b"hello world", (NOT_JSON,)),
        Kind("HTML error page", b"<html><body><h1>502 Bad Gateway</h1></body></html>", (NOT_JSON,)),
        Kind("two documents on one line", line + line, (NOT_JSON,)),
        Kind("trailing comma", line.replace(b"]]", b"],]"), (NOT_JSON,)),
        Kind("single quotes", line.replace(b'"', b"'"), (NOT_JSON,)),
        Kind("leading zeros", line.replace(b",31,", b",031,"), (NOT_JSON,)),
        Kind("hex number", line.replace(b",31,", b",0x1f,"), (NOT_JSON,)),
        Kind("comment", line + b" // end", (NOT_JSON,)),
        # nesting
        Kind("100,000 open brackets", b"[" * 100_000, (NOT_JSON,)),
        Kind("a value nested 5,000 deep", with_bytes(line, nested(5000)), (NOT_JSON,)),
        Kind(
            "a value nested 900 deep",
            with_bytes(line, nested(900)),
            ("field 'humidity' is a JSON list",),
        ),
        Kind("payload nested 3,000 deep", nested(3000), (NOT_JSON,)),
        # huge numbers, non-finite numbers
        Kind("NaN", dumps(doc([with_value(4, float("nan"))])), ("field 'humidity' is nan",)),
        Kind(
            "Infinity", dumps(doc([with_value(5, float("inf"))])), ("field 'temperature' is inf",)
        ),
        Kind(
            "-Infinity", dumps(doc([with_value(7, float("-inf"))])), ("field 'pm1.0_cf_1' is -inf",)
        ),
        Kind("1e999", line.replace(b",31,", b",1e999,"), ("field 'humidity' is inf",)),
        Kind("-1e999", line.replace(b",31,", b",-1e999,"), ("field 'humidity' is -inf",)),
        Kind(
            "integer of 400 digits",
            line.replace(b",31,", b"," + b"9" * 400 + b","),
            ("field 'humidity' is an integer too large",),
        ),
        Kind(
            "integer of 5,000 digits", line.replace(b",31,", b"," + b"9" * 5000 + b","), (NOT_JSON,)
        ),
        Kind(
            "1e-999 (underflows to 0)",
            with_bytes(dumps(doc([good_row(NEW_SENSOR + 3)])), b"1e-999"),
            (READING,),
        ),
        Kind(
            "sensor_index 2**64",
            dumps(doc([with_value(0, 2**64)])),
            ("sensor_index is 1.8446744073709552e+19, not an integer",),
        ),
        Kind(
            "sensor_index 2**63",
            dumps(doc([with_value(0, 2**63)])),
            ("sensor_index 9223372036854775808 is not",),
        ),
        Kind("negative sensor_index", dumps(doc([with_value(0, -5)])), ("sensor_index -5 is not",)),
        Kind("sensor_index 7.0", dumps(doc([with_value(0, 7.0)])), ("sensor_index is 7.0",)),
        Kind(
            "last_seen in year 33658",
            dumps(doc([with_value(1, 10**12)])),
            ("last_seen 1000000000000 is not a time",),
        ),
        Kind(
            "last_seen a float",
            dumps(doc([with_value(1, 1775001580.5)])),
            ("last_seen is 1775001580.5",),
        ),
        Kind("last_seen is null", dumps(doc([with_value(1, None)])), ("last_seen is null",)),
        Kind(
            "a value that is a list",
            dumps(doc([with_value(8, [1])])),
            ("field 'pm2.5_cf_1' is a JSON list",),
        ),
        Kind(
            "a number as text",
            dumps({**text_doc, "data": [[NEW_SENSOR, STAMP, 5, 1.0]]}),
            ("field 'name' is a JSON int, not text",),
        ),
        # rows of the wrong shape
        Kind(
            "row too short",
            dumps(doc([good_row()[:5]])),
            ("row has 5 values but 'fields' names 11",),
        ),
        Kind(
            "row too long",
            dumps(doc([good_row() + [1]])),
            ("row has 12 values but 'fields' names 11",),
        ),
        Kind("empty row", dumps(doc([[]])), ("row has 0 values",)),
        Kind(
            "row is an object", dumps(doc([{"sensor_index": NEW_SENSOR}])), ("row is a JSON dict",)
        ),
        Kind("row is a string", dumps(doc(["row"])), ("row is a JSON str",)),
        Kind("row is null", dumps(doc([None])), ("row is a JSON NoneType",)),
        Kind("row is a number", dumps(doc([5])), ("row is a JSON int",)),
        # envelopes of the wrong type
        Kind(
            "payload is an array", dumps([good_row()]), ("payload is a JSON list, not an object",)
        ),
        Kind("payload is a string", b'"payload"', ("payload is a JSON str",)),
        Kind("payload is a number", b"42", ("payload is a JSON int",)),
        Kind("payload is null", b"null", ("payload is a JSON NoneType",)),
        Kind("payload is true", b"true", ("payload is a JSON bool",)),
        Kind(
            "no fields",
            dumps({"data_time_stamp": STAMP, "data": [good_row(), good_row()]}),
            ("payload has no 'fields'",) * 2,
        ),
        Kind(
            "fields is a string",
            dumps(doc([good_row()], fields="sensor_index,last_seen")),
            ("payload has no 'fields'",),
        ),
        Kind(
            "fields holds a number",
            dumps(doc([good_row()], fields=[*FIELDS[:-1], 5])),
            ("payload has no 'fields'",),
        ),
        Kind(
            "fields repeat a name",
            dumps(doc([good_row()], fields=[*FIELDS[:-1], "humidity"])),
            ("payload 'fields' has repeated names",),
        ),
        Kind(
            "fields is empty",
            dumps(doc([good_row()], fields=[])),
            ("row has 11 values but 'fields' names 0",),
        ),
        Kind(
            "no data",
            dumps({"data_time_stamp": STAMP, "fields": FIELDS}),
            ("payload has no 'data' list",),
        ),
        Kind("data is an object", dumps(doc({"0": good_row()})), ("payload has no 'data' list",)),
        Kind("data is a string", dumps(doc("rows")), ("payload has no 'data' list",)),
        Kind("data is empty (nothing changed)", dumps(doc([])), ()),
        Kind(
            "data_time_stamp is a string",
            dumps(doc([good_row()], data_time_stamp="1775001600")),
            ("payload 'data_time_stamp' is not an integer",),
        ),
        Kind(
            "data_time_stamp is a float",
            dumps(doc([good_row()], data_time_stamp=1775001600.0)),
            ("payload 'data_time_stamp' is not an integer",),
        ),
        Kind(
            "data_time_stamp is a boolean",
            dumps(doc([good_row()], data_time_stamp=True)),
            ("payload 'data_time_stamp' is not an integer",),
        ),
        Kind(
            "data_time_stamp in year 33658",
            dumps(doc([good_row()], data_time_stamp=10**12)),
            ("payload 'data_time_stamp' 1000000000000 is not a time",),
        ),
        Kind(
            "no last_seen, no data_time_stamp",
            dumps({"fields": FIELDS[:1] + FIELDS[2:], "data": [good_row()[:1] + good_row()[2:]]}),
            ("payload has neither",),
        ),
        Kind(
            "other envelope fields of the wrong type",
            dumps(doc([good_row(NEW_SENSOR + 4)], api_version=5, max_age="x", time_stamp=None)),
            (READING,),
        ),
        Kind(
            "duplicate keys (the last wins)",
            b'{"fields":5,"data":"x",' + dumps(doc([good_row(NEW_SENSOR + 6)]))[1:],
            (READING,),
        ),
        # blank and whitespace lines are not records
        Kind("empty line", b"", ()),
        Kind("spaces and a tab", b"  \t ", ()),
        Kind("a lone carriage return", b"\r", ()),
        Kind("CRLF line ending", dumps(doc([good_row(NEW_SENSOR + 5)])) + b"\r", (READING,)),
        # huge lines
        Kind("5 MB of garbage", b"x" * 5_000_000, (NOT_JSON,)),
        Kind(
            "a 1 MB string where a number belongs",
            dumps(doc([with_value(4, "y" * 1_000_000)])),
            ("field 'humidity' is a string ('yyyy",),
        ),
    ]
    out.extend(_wrong_types())
    return out


def mixed_lines(
    kinds_: list[Kind], path: Path = SHIPPED, every: int = 7
) -> list[tuple[bytes, Kind | None]]:
    """The lines of `path` (kind None) with one bad kind after every `every` good lines, the
    rest at the end."""
    out: list[tuple[bytes, Kind | None]] = []
    bad = iter(kinds_)
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        out.append((line, None))
        if n % every == 0 and (kind := next(bad, None)) is not None:
            out.append((kind.line, kind))
    out.extend((kind.line, kind) for kind in bad)
    return out


def write_mixed(
    out: Path, kinds_: list[Kind] | None = None, path: Path = SHIPPED, every: int = 7
) -> dict[int, Kind]:
    """Write `path` with the kinds mixed in to `out`; return the line number of each kind."""
    lines = mixed_lines(kinds() if kinds_ is None else kinds_, path, every)
    out.write_bytes(b"".join(line + b"\n" for line, _ in lines))
    return {n: kind for n, (_, kind) in enumerate(lines, start=1) if kind is not None}


if __name__ == "__main__":
    where = write_mixed(Path(sys.argv[1]))
    print(f"{len(where)} kinds of bad lines mixed into {SHIPPED.name} -> {sys.argv[1]}")
