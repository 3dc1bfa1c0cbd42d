"""From TOML tables and `build_flow` keywords to one `FlowConfig`, with errors people can act on.

A configuration is first a tree of tables (what `tomllib` reads: `{"detection": {"threshold":
0.8}}`); keywords become the same tree (`threshold=0.8` sets `[detection] threshold`) and override
the file's values one option at a time; the tree is then built into the frozen groups, which
check every value. A key that is not an option names itself, its table, and the closest valid key
or the table it belongs in.

>>> resolve({"detection": {"threshold": 0.8}}, threshold=0.9).detection.threshold
0.9
>>> resolve({"detection": {"thresold": 0.8}})
Traceback (most recent call last):
...
core.errors.ConfigError: [detection] thresold: unknown option; did you mean threshold?
>>> resolve({"source": {"threshold": 0.8}})
Traceback (most recent call last):
...
core.errors.ConfigError: [source] threshold: unknown option; it belongs in [detection]
>>> resolve({"run": {"engine": "readings"}})
Traceback (most recent call last):
...
core.errors.ConfigError: [run] engine: removed: the flow has one engine (columns)
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from config.flow import FlowConfig
from config.options import KEYWORD, SHORTHAND, Group, hints_of, is_group, where
from core.errors import ConfigError


class Keyword(NamedTuple):
    """What a `build_flow` keyword sets: an option, or a whole group (a mapping of options)."""

    path: tuple[str, ...]  # the table it is in
    name: str  # the option or group there
    group: bool
    shorthand: str | None  # a group's option set by a plain value


def groups(cls: type = FlowConfig, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, type]]:
    """Every group class with its table path, parents first."""
    yield path, cls
    for spec in dataclasses.fields(cls):
        if is_group(spec):
            yield from groups(hints_of(cls)[spec.name], (*path, spec.name))


def table_name(path: tuple[str, ...]) -> str:
    """A table's dotted TOML name (`cleaning.imputation`) from its path."""
    return ".".join(path)


def _keywords() -> dict[str, Keyword]:
    """Keyword → what it sets. An option's keyword is its field name, or the `keyword` its field
    names; inside a group that is set by one keyword, only options with their own keyword."""
    found: dict[str, Keyword] = {}
    covered: set[tuple[str, ...]] = set()  # groups set by one keyword, and what they hold

    def add(keyword: str, target: Keyword) -> None:
        if keyword in found:
            raise TypeError(f"two options take the keyword {keyword!r}: {found[keyword]}, {target}")
        found[keyword] = target

    for path, cls in groups():
        inside = any(path[:n] in covered for n in range(1, len(path) + 1))
        for spec in dataclasses.fields(cls):
            keyword = spec.metadata[KEYWORD]
            if is_group(spec):
                if keyword is not None:
                    covered.add((*path, spec.name))
                    add(keyword, Keyword(path, spec.name, True, spec.metadata[SHORTHAND]))
            elif keyword is not None or not inside:
                add(keyword or spec.name, Keyword(path, spec.name, False, None))
    return found


#: Every `build_flow` keyword (checked at import: no two options share one).
KEYWORDS = _keywords()
#: Options that no longer exist (table path and key), and why: a file, keyword or flag that
#: still sets one is an error that says so, not a guess at a similar key.
REMOVED = {("run", "engine"): "the flow has one engine (columns)"}


def _removed(path: tuple[str, ...], key: str) -> ConfigError | None:
    """The error for an option that was removed, or None."""
    why = REMOVED.get((*path, key))
    return None if why is None else ConfigError(f"{where(table_name(path), key)}: removed: {why}")


def _homes() -> dict[str, list[tuple[str, ...]]]:
    """Key name → the tables that hold it (as an option or as a sub-table)."""
    homes: dict[str, list[tuple[str, ...]]] = {}
    for path, cls in groups():
        for spec in dataclasses.fields(cls):
            homes.setdefault(spec.name, []).append(path)
    return homes


_HOMES = _homes()


def _unknown(path: tuple[str, ...], cls: type, key: str, value: Any) -> ConfigError:
    """The error for a key that `cls` does not have: the closest key of this table, or the
    tables that do have it. A sub-table is named by its full path (`[cleaning.imputation]`)."""
    names = [spec.name for spec in dataclasses.fields(cls)]
    close = difflib.get_close_matches(key, names, n=1)
    others = [p for p in _HOMES.get(key, []) if p != path]
    if isinstance(value, Mapping):
        name, kind = f"[{table_name((*path, key))}]", "table"
        close = [f"[{table_name((*path, c))}]" for c in close]
        places = [f"[{table_name((*p, key))}]" for p in others]
    else:
        name, kind = where(table_name(path), key), "option"
        places = [f"[{table_name(p)}]" if p else "the top level" for p in others]
    if close and places:
        hint = f"did you mean {close[0]}? ({key} belongs in {' or '.join(places)})"
    elif places and kind == "table":
        hint = f"did you mean {' or '.join(places)}?"
    elif places:
        hint = f"it belongs in {' or '.join(places)}"
    elif close:
        hint = f"did you mean {close[0]}?"
    else:
        hint = "valid keys: " + ", ".join(names)
    return ConfigError(f"{name}: unknown {kind}; {hint}")


def build(data: Mapping[str, Any], cls: type = FlowConfig, path: tuple[str, ...] = ()) -> Group:
    """The group `cls` from its table `data` (sub-tables become sub-groups), checked."""
    specs = {spec.name: spec for spec in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        spec = specs.get(key)
        if spec is None:
            raise _removed(path, key) or _unknown(path, cls, key, value)
        if is_group(spec) and isinstance(value, Mapping):
            value = build(value, hints_of(cls)[key], (*path, key))
        elif is_group(spec) and not isinstance(value, Group):
            raise ConfigError(
                f"{where(table_name(path), key)}: {value!r} is not a table; "
                f"allowed: a table [{table_name((*path, key))}] of options"
            )
        values[key] = value
    return cls(**values)


def tables_of(config: Group) -> dict[str, Any]:
    """A group as its tree of tables (values as they are: sinks and functions stay objects)."""
    tables: dict[str, Any] = {}
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        tables[spec.name] = tables_of(value) if is_group(spec) else value
    return tables


def merge(base: Mapping[str, Any], over: Mapping[str, Any], cls: type = FlowConfig) -> dict:
    """`base` with the options of `over` put in, table by table (an option's own value, a table
    of ranges for instance, is replaced whole)."""
    merged = dict(base)
    for key, value in over.items():
        spec = next((s for s in dataclasses.fields(cls) if s.name == key), None)
        inner = merged.get(key)
        if (
            spec is not None
            and is_group(spec)
            and isinstance(value, Mapping)
            and isinstance(inner, Mapping)
        ):
            merged[key] = merge(inner, value, hints_of(cls)[key])
        else:
            merged[key] = value
    return merged


def keyword_tables(keywords: Mapping[str, Any]) -> dict[str, Any]:
    """`build_flow` keywords as a tree of tables."""
    tables: dict[str, Any] = {}
    for name, value in keywords.items():
        target = KEYWORDS.get(name)
        if target is None:
            raise _unknown_keyword(name)
        node = tables
        for part in target.path:
            node = node.setdefault(part, {})
        if target.group:
            if isinstance(value, Group):
                value = tables_of(value)
            elif value is None or not isinstance(value, Mapping):
                if target.shorthand is None and value is None:
                    value = {}
                elif target.shorthand is None:
                    raise ConfigError(f"{name}: {value!r} is not a mapping of options")
                else:
                    value = {target.shorthand: value}
            node.setdefault(target.name, {}).update(value)
        else:
            node[target.name] = value
    return tables


def _unknown_keyword(name: str) -> ConfigError:
    for (*path, key) in REMOVED:  # a removed option's keyword was its key
        if key == name:
            return _removed(tuple(path), key)  # type: ignore[return-value]
    for keyword, target in KEYWORDS.items():  # a TOML key given as a keyword
        if target.name == name and keyword != name:
            table = table_name(target.path)
            return ConfigError(f"{name}: unknown option; [{table}] {name} is keyword {keyword}")
    close = difflib.get_close_matches(name, list(KEYWORDS), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ConfigError(f"{name}: unknown option{hint}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables; a missing or malformed file (bad syntax, not UTF-8, nested deeper
    than the parser recurses) is a ConfigError naming it."""
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not valid TOML: not UTF-8 text (byte {error.start}: {error.reason})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deeply") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror}") from None


def resolve(
    config: None | str | Path | Mapping[str, Any] | FlowConfig = None, **keywords: Any
) -> FlowConfig:
    """The flow's configuration: `config` (a TOML file, a tree of tables or a `FlowConfig`),
    then the keywords over it. A file's own errors are reported with its name first."""
    if config is None:
        base: dict[str, Any] = {}
    elif isinstance(config, FlowConfig):
        base = tables_of(config)
    elif isinstance(config, Mapping):
        base = dict(config)
    elif isinstance(config, str | Path):
        base = read_toml(config)
        try:
            build(base)
        except ConfigError as error:
            raise ConfigError(f"{config}: {error}") from None
    else:
        raise ConfigError(f"config: {config!r}; allowed: a TOML file path or a FlowConfig")
    built = build(merge(base, keyword_tables(keywords)))
    assert isinstance(built, FlowConfig)
    return built
