"""A configuration as an annotated TOML file: every option, its value and its one-line doc.

Generated from the groups themselves, so the README's example file and `python -m config` can
never drift from the code. Options unset by default are shown commented out, with an example;
what only Python can give (a Bytewax sink, a function) is shown as a comment. Credentials are
masked (`***`): a URL's password or secret parameter (`core/redaction.py`), and the value of an
HTTP header whose name says it is one (Authorization, X-API-Key, a token, a cookie).

>>> from config.flow import RunConfig
>>> print(to_toml(RunConfig(batch_size=500), header=False))
# How the run is laid out and tuned.
[run]
key = "sensor"          # "sensor": state per sensor; "global": one of each, in file order
batch_size = 500        # readings per source batch
shards = 2              # sensor shards a file is read in (match the worker count)
progress = 10.0         # seconds between progress log lines; false: none
gc_threshold = 100000   # cycle-collector threshold while the flow runs; false: leave it
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.flow import FlowConfig
from config.options import DOC, EXAMPLE, KEYWORD, Group, is_group
from core.redaction import MASK, redact

HEADER = """\
# The air-quality flow's configuration: every option, its default and what it does
# (`air-quality config show` prints this file). Run a deployment with
#   air-quality run -c flow.toml --threshold 0.8     # flags override the file
# or python -m bytewax.run "dataflows.air_quality:build_flow(config='flow.toml', threshold=0.8)".
# Paths are relative to the working directory; false turns an optional setting off."""
#: Trailing comments start at this column at most (longer lines carry them above).
COMMENT_COLUMN = 46
WIDTH = 100
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
#: A mapping's text value under a key like these is a credential (an HTTP header's, say).
SECRET_KEY = re.compile(r"auth|key|token|secret|pass|cookie|session|signature", re.IGNORECASE)


class _NotToml(Exception):
    """A value TOML cannot hold (a sink, a source, a function)."""


def key_text(key: str) -> str:
    """A TOML key: bare when it can be (`pm1_0`), else quoted (`"pm1.0_cf_1"`)."""
    return key if _BARE_KEY.match(key) else json.dumps(key)


def value_text(value: Any) -> str:
    """A value in TOML syntax (inline: strings, numbers, booleans, arrays, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str | Path):
        return json.dumps(redact(str(value)))  # JSON's escapes are TOML's
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{key_text(k)} = {value_text(_masked(k, v))}" for k, v in value.items())
        return "{ " + items + " }"
    raise _NotToml


def _masked(key: str, value: Any) -> Any:
    """A mapping's value as shown: masked when its key names a credential."""
    return MASK if isinstance(value, str) and SECRET_KEY.search(str(key)) else value


def _table_doc(cls: type) -> str:
    return " ".join(inspect.getdoc(cls).split("\n\n")[0].split())


def _comment(text: str) -> list[str]:
    """A comment, wrapped to the page width."""
    lines, line = [], "#"
    for word in text.split():
        if len(line) + 1 + len(word) > WIDTH:
            lines.append(line)
            line = "#"
        line += " " + word
    return [*lines, line]


def _aligned(entries: list[tuple[str, str]]) -> list[str]:
    """`key = value` lines with their docs as trailing comments in one column (a line too long
    for it carries its doc above)."""
    fits = [len(line) for line, _doc in entries if len(line) + 3 <= COMMENT_COLUMN]
    column = max(fits, default=0) + 3
    out = []
    for line, doc in entries:
        if len(line) + 3 <= COMMENT_COLUMN and column + 2 + len(doc) <= WIDTH:
            out.append(f"{line:<{column}}# {doc}")
        else:
            out += [*_comment(doc), line]
    return out


def _render(config: Group, path: tuple[str, ...], out: list[str]) -> None:
    specs = dataclasses.fields(config)
    entries: list[tuple[str, str]] = []
    tables: list[tuple[str, Mapping[str, Any], str]] = []
    for spec in specs:
        if is_group(spec):
            continue
        value, doc = getattr(config, spec.name), spec.metadata[DOC]
        keyword = spec.metadata[KEYWORD]
        if keyword is not None and keyword != spec.name:
            doc += f" (keyword {keyword})"
        if value is None and spec.default is None:
            example = spec.metadata[EXAMPLE]
            shown = "" if example is None else " " + value_text(example)
            entries.append((f"# {spec.name} ={shown}", doc))
            continue
        if value is None:
            entries.append((f"{spec.name} = false", doc))
            continue
        try:
            text = value_text(value)
        except _NotToml:
            entries.append((f"# {spec.name} = (set from Python: {type(value).__name__})", doc))
            continue
        if isinstance(value, Mapping) and len(f"{spec.name} = {text}") > WIDTH:
            tables.append((spec.name, value, doc))
        else:
            entries.append((f"{spec.name} = {text}", doc))
    if path and (entries or tables or not any(is_group(s) for s in specs)):
        out += ["", *_comment(_table_doc(type(config))), f"[{'.'.join(path)}]"]
        out += _aligned(entries)
    elif path:
        out += ["", *_comment(_table_doc(type(config)))]
    for name, mapping, doc in tables:
        header = ".".join((*path, key_text(name)))
        out += ["", *_comment(doc), f"[{header}]"]
        out += [f"{key_text(k)} = {value_text(_masked(k, v))}" for k, v in mapping.items()]
    for spec in specs:
        if is_group(spec):
            _render(getattr(config, spec.name), (*path, spec.name), out)


def to_toml(config: Group | None = None, *, header: bool = True) -> str:
    """`config` (the defaults when None) as an annotated TOML file; a group alone (with its
    table path) when given one."""
    config = FlowConfig() if config is None else config
    out: list[str] = []
    path = tuple(config.table.split(".")) if config.table else ()
    _render(config, path, out)
    text = "\n".join(out).strip("\n")
    return f"{HEADER}\n\n{text}\n" if header else text
