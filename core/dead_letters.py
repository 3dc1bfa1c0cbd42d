"""Dead-letter records any sink can write: `{"reason", "origin", "raw"}`, with `raw` made safe.

A dead letter keeps the input that could not be used, and that input is by nature anything: NaN
and infinities (JSON has neither), bytes that are not UTF-8, strings with lone surrogates (which
no UTF-8 encoder takes), integers too long to print, nesting deeper than an encoder recurses,
lines of many megabytes, or any object a custom source sends. `json_safe` turns any of these into
plain JSON values (str, int, finite float, bool, None, lists, dicts with str keys) of bounded
size, so writing a dead letter can never fail: to a JSON-lines file, a webhook's undelivered
file, or a database column. Only dead letters pay for it; good records never go through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from core.json_lines import to_line

#: Characters (or, for bytes, bytes) of a raw input kept whole; a longer one keeps this much.
RAW_LIMIT = 4096
#: Levels of nesting kept; anything deeper is replaced by `TOO_DEEP`.
RAW_DEPTH = 32
TOO_DEEP = f"[nested deeper than {RAW_DEPTH} levels]"
#: JSON's own spellings of what it cannot hold, as json writes them when allowed.
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
#: Python will not print an integer of more than 4,300 digits (`sys.set_int_max_str_digits`).
MAX_INT_BITS = 14_000


class Prefix(NamedTuple):
    """The start of a raw input too long to keep (a huge line that a source read no further),
    with its whole length in bytes: a dead letter's `raw` that `json_safe` writes as a prefix."""

    data: bytes
    length: int


def _text(value: str) -> str:
    """`value`, with lone surrogates (from JSON escapes or undecodable file names) as `\\udcxx`.

    >>> _text("caf\\udce9")
    'caf\\\\udce9'
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode()
    return value


def _safe(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        bits = value.bit_length()
        return value if bits <= MAX_INT_BITS else f"[{bits}-bit integer]"
    if isinstance(value, float):
        return value if value - value == 0 else NON_FINITE[repr(float(value))]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping | list | tuple) and depth >= RAW_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {
            _text(k) if isinstance(k, str) else _text(str(k)): _safe(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_safe(v, depth + 1) for v in value]
    return _text(str(value))  # any other object: its text


def json_safe(raw: Any, limit: int = RAW_LIMIT) -> Any:
    """`raw` as a JSON value that always encodes (no NaN, no surrogates, bounded depth and size).

    Bytes are read as UTF-8, undecodable bytes as `\\xNN`; NaN and infinities become the strings
    JSON parsers spell them with. What is longer than `limit` (bytes of bytes, characters of text,
    characters of the JSON text of anything else) becomes `{"prefix": <its first limit bytes or
    characters, as text>, "bytes" or "characters": <its whole length>}`.

    >>> json_safe([7, float("nan"), b"caf\\xe9", {"deep": [[[1]]]}])
    [7, 'NaN', 'caf\\\\xe9', {'deep': [[[1]]]}]
    >>> json_safe(b"x" * 10, limit=4)
    {'prefix': 'xxxx', 'bytes': 10}
    >>> json_safe({"a": "long text"}, limit=6)
    {'prefix': '{"a":"', 'characters': 17}
    >>> json_safe(Prefix(b"abcdef", 1_000_000), limit=3)
    {'prefix': 'abc', 'bytes': 1000000}
    """
    if isinstance(raw, Prefix):
        return {"prefix": _safe(raw.data[:limit], 0), "bytes": raw.length}
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        return _safe(data, 0) if len(data) <= limit else json_safe(Prefix(data, len(data)), limit)
    if isinstance(raw, str):
        if len(raw) <= limit:
            return _text(raw)
        return {"prefix": _text(raw[:limit]), "characters": len(raw)}
    safe = _safe(raw, 0)
    if not isinstance(safe, Mapping | list):
        return safe
    text = to_line(safe)
    if len(text) <= limit:
        return safe
    return {"prefix": text[:limit], "characters": len(text)}


def dead_letter_record(reason: str, origin: str, raw: Any) -> dict[str, Any]:
    """A dead letter as the record every sink writes: why, where from, and the raw input made
    safe by `json_safe`.

    >>> dead_letter_record("field 'humidity' is inf", "polls.jsonl:3#row0", [7, float("inf")])
    {'reason': "field 'humidity' is inf", 'origin': 'polls.jsonl:3#row0', 'raw': [7, 'Infinity']}
    """
    return {"reason": _text(str(reason)), "origin": _text(str(origin)), "raw": json_safe(raw)}
