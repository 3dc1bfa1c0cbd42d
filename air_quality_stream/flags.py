"""Command-line flags generated from the typed configuration (`config/flow.py`), so they
cannot drift from it: one flag per option, with its type, default and doc.

A flag's name is the option's `build_flow` keyword (`--threshold`, `--output`), else the
shortest tail of its TOML path that no other option has (`--purpleair-interval` for
`[source.purpleair] interval`); `_` becomes `-`. A true-or-false option is a pair
(`--validate` / `--no-validate`). A value is read as TOML (`0.8`, `true`, `[1, 2]`,
`{humidity = [0, 100]}`), else as text; a list may be given comma-separated (`a,b`), and
`false` turns an optional setting off. The configuration checks each value as it checks a
file's, so a bad flag is the same one-line error.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from config.flow import FlowConfig
from config.options import DOC, KEYWORD, describe, hints_of, is_group
from config.tables import KEYWORDS, REMOVED, groups, table_name


class Flag(NamedTuple):
    """One option as a flag: its name, TOML table path, option name, type hint and field."""

    name: str
    path: tuple[str, ...]
    option: str
    hint: Any
    spec: dataclasses.Field

    @property
    def dest(self) -> str:
        return "option:" + ".".join((*self.path, self.option))

    @property
    def toml(self) -> str:
        """Where the option sits in a file: `[table] key`."""
        return f"[{table_name(self.path)}] {self.option}" if self.path else self.option


def _plain(hint: Any) -> set[type]:
    """The TOML-expressible kinds a type takes (str, int, float, bool, None, list, dict)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, __import__("types").UnionType):
        return set().union(*(_plain(arg) for arg in typing.get_args(hint)))
    if origin is tuple:
        return {list}
    if origin in (dict, collections.abc.Mapping):
        return {dict}
    if hint in (str, Path):
        return {str}
    if hint is type(None):
        return {type(None)}
    return {hint} if hint in (int, float, bool) else set()


def _options() -> Iterator[tuple[tuple[str, ...], dataclasses.Field, Any]]:
    for path, cls in groups():
        hints = hints_of(cls)
        for spec in dataclasses.fields(cls):
            if not is_group(spec):
                yield path, spec, hints[spec.name]


def flags() -> list[Flag]:
    """Every option that a command line can set (not those only Python can: sinks, functions)."""
    by_option = {(k.path, k.name): name for name, k in KEYWORDS.items() if not k.group}
    options = [o for o in _options() if _plain(o[2]) - {type(None)}]
    tails: dict[tuple[str, ...], int] = {}
    for path, spec, _hint in options:
        full = (*path, spec.name)
        for n in range(1, len(full) + 1):
            tails[full[-n:]] = tails.get(full[-n:], 0) + 1
    found = []
    for path, spec, hint in options:
        name = by_option.get((path, spec.name))
        if name is None:
            full = (*path, spec.name)
            tail = next(
                full[-n:]
                for n in range(1, len(full) + 1)
                if tails[full[-n:]] == 1 and "_".join(full[-n:]) not in KEYWORDS
            )
            name = "_".join(tail)
        found.append(Flag(name.replace("_", "-"), path, spec.name, hint, spec))
    return found


def parse_value(text: str, hint: Any) -> Any:
    """A flag's text as the option's value: TOML when it parses and fits, else the text (a list
    from `a,b`); the configuration checks what comes out."""
    kinds = _plain(hint)
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    if value is False and type(None) in kinds:
        return False
    if list in kinds and not isinstance(value, list):
        return [_item(part.strip()) for part in text.split(",") if part.strip()]
    if type(value) not in kinds and not (type(value) is int and float in kinds) and str in kinds:
        return text
    return value


def _item(text: str) -> Any:
    """One item of a comma-separated list: a number when it reads as one, else the text."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text


def default_of(flag: Flag) -> Any:
    """The option's default value."""
    if flag.spec.default is dataclasses.MISSING:
        return flag.spec.default_factory()  # type: ignore[misc]
    return flag.spec.default


def _help(flag: Flag) -> str:
    default = default_of(flag)
    shown = "unset" if default is None else default
    return f"{flag.spec.metadata[DOC]} ({flag.toml}; default {shown!s})".replace("%", "%%")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One argument group per configuration table, one flag per option (default: the file's)."""
    sections: dict[tuple[str, ...], argparse._ArgumentGroup] = {}
    for path, cls in groups():
        title = f"[{table_name(path)}]" if path else "top level"
        doc = " ".join((cls.__doc__ or "").split())
        sections[path] = parser.add_argument_group(title, doc.replace("%", "%%"))
    for flag in flags():
        section = sections[flag.path]
        if _plain(flag.hint) - {type(None)} == {bool}:
            section.add_argument(
                f"--{flag.name}",
                dest=flag.dest,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_help(flag),
            )
            continue
        section.add_argument(
            f"--{flag.name}",
            dest=flag.dest,
            metavar=_metavar(flag.hint),
            type=lambda text, hint=flag.hint: parse_value(text, hint),
            default=None,
            help=_help(flag),
        )
    for *path, key in REMOVED:  # hidden: the configuration says the option was removed
        dest = "option:" + ".".join((*path, key))
        parser.add_argument(f"--{key.replace('_', '-')}", dest=dest, help=argparse.SUPPRESS)


def _metavar(hint: Any) -> str:
    kinds = _plain(hint)
    if list in kinds:
        return "LIST"
    if dict in kinds:
        return "TABLE"
    for kind, word in ((float, "NUMBER"), (int, "INT"), (str, "TEXT")):
        if kind in kinds:
            return word
    return "VALUE"


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, as a tree of TOML tables."""
    tree: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("option:") or value is None:
            continue
        *path, name = dest.removeprefix("option:").split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[name] = value
    return tree


def describe_flag(flag: Flag) -> str:
    """What a flag takes, in words (the configuration's own wording)."""
    return describe(flag.hint)


__all__ = ["Flag", "FlowConfig", "KEYWORD", "add_flags", "flags", "overrides", "parse_value"]
