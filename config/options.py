"""Typed, documented, validated options: the building blocks of the flow's configuration.

An option is a dataclass field made by `option(default, doc, ...)`: its type is the field's
annotation, and the doc is the one line that the README and `python -m config` print. A group
is a frozen dataclass deriving from `Group`: when it is built, every value is checked against
its field's type (and `choices`, `min`, `max`) and converted to its canonical form (a TOML list
becomes a tuple, an integer given for a number a float), so a bad value fails where the flow is
built, with an error that names the table, the key, the value and what is allowed.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Example(Group):
...     table = "example"
...     size: int = option(10, "how many", min=1)
...     names: tuple[str, ...] = option(("a",), "which")
>>> Example(names=["b", "c"])
Example(size=10, names=('b', 'c'))
>>> Example(size=0)
Traceback (most recent call last):
...
core.errors.ConfigError: [example] size: 0 is out of range; allowed: at least 1
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

from core.errors import ConfigError
from sources.documents import SourceError

#: Metadata keys of an option.
DOC, KEYWORD, CHOICES, MIN, MAX, SHORTHAND, EXAMPLE = (
    "doc",
    "keyword",
    "choices",
    "min",
    "max",
    "shorthand",
    "example",
)


def option(
    default: Any,
    doc: str,
    *,
    keyword: str | None = None,
    choices: tuple[Any, ...] | None = None,
    min: float | None = None,  # noqa: A002 - reads as the option's bound
    max: float | None = None,  # noqa: A002
    example: Any = None,
) -> Any:
    """A field of a group: default, one-line doc, and optionally the `build_flow` keyword that
    sets it (when not the field's name), the allowed values or the allowed range, and for an
    option that is unset by default an `example` value (shown commented out in the TOML)."""
    metadata = {DOC: doc, KEYWORD: keyword, CHOICES: choices, MIN: min, MAX: max, EXAMPLE: example}
    if isinstance(default, dict | list | set):
        return dataclasses.field(default_factory=lambda: _copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(factory: type, *, keyword: str | None = None, shorthand: str | None = None) -> Any:
    """A field holding a nested group (a TOML sub-table; its docstring documents it). With
    `keyword`, `build_flow` takes the group as one keyword: a mapping of its options, or one
    value for its `shorthand` option."""
    metadata = {KEYWORD: keyword, SHORTHAND: shorthand}
    return dataclasses.field(default_factory=factory, metadata=metadata)


def _copy(value: Any) -> Any:
    """A new container of the same type and items (each group gets its own mutable default)."""
    return type(value)(value)


@dataclasses.dataclass(frozen=True)
class Group:
    """A frozen dataclass of options, checked and normalised when built (`check` adds the
    rules that tie several options together)."""

    table: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = hints_of(type(self))
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if is_group(spec):
                if not isinstance(value, hints[spec.name]):
                    fail(self.table, spec.name, value, "a table of options")
                continue
            value = conform(self.table, spec.name, value, hints[spec.name])
            check_bounds(self.table, spec, value, hints[spec.name])
            object.__setattr__(self, spec.name, value)
        self.check()

    def check(self) -> None:
        """Rules over several options of the group; raise `ConfigError` via `fail`."""


def is_group(spec: dataclasses.Field) -> bool:
    """Whether a field holds a nested group (made by `group`), not an option."""
    return SHORTHAND in spec.metadata


_HINTS: dict[type, dict[str, Any]] = {}


def hints_of(cls: type) -> dict[str, Any]:
    """The evaluated annotations of a group's fields (cached per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def fail(table: str, key: str, value: Any, allowed: str, problem: str = "") -> typing.NoReturn:
    """Raise the one-line error: `[table] key: value is problem; allowed: ...`."""
    problem = problem or f"{value!r} is not allowed"
    raise ConfigError(f"{where(table, key)}: {problem}; allowed: {allowed}")


def where(table: str, key: str) -> str:
    """How an error names an option: `[table] key`, or the bare key at the top level."""
    return f"[{table}] {key}" if table else key


def check_bounds(table: str, spec: dataclasses.Field, value: Any, hint: Any) -> None:
    """`choices`, `min` and `max` of an option (None, where the type allows it, passes)."""
    choices, low, high = spec.metadata[CHOICES], spec.metadata[MIN], spec.metadata[MAX]
    if choices is not None and value is not None and value not in choices:
        off = _is_union(hint) and type(None) in typing.get_args(hint)
        fail(table, spec.name, value, " or ".join(repr(c) for c in choices) + " or false" * off)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and ((low is not None and value < low) or (high is not None and value > high)):
        fail(table, spec.name, value, bounds(low, high), f"{value!r} is out of range")


def bounds(low: float | None, high: float | None) -> str:
    """An option's allowed range in words: `from 0 to 1`, `at least 1`, `at most 5`."""
    if low is not None and high is not None:
        return f"from {low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


class _Mismatch(Exception):
    """A value does not fit a type (internal: becomes a ConfigError naming the option)."""


class _NotFinite(Exception):
    """A number that is NaN or infinite (no option takes one: `nan > threshold` is never true,
    so a NaN threshold would silently report nothing)."""


def conform(table: str, key: str, value: Any, hint: Any) -> Any:
    """`value` in the canonical form of `hint`, or a ConfigError naming what is allowed."""
    try:
        return _conform(value, hint)
    except _Mismatch:
        fail(table, key, value, describe(hint), f"{value!r} is the wrong type")
    except _NotFinite:
        what = "is not" if isinstance(value, float) else "holds a number that is not"
        fail(table, key, value, "finite numbers", f"{value!r} {what} finite")


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _conform(value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if _is_union(hint):
        for arg in args:  # in order: the first type that takes the value wins
            try:
                return _conform(value, arg)
            except _Mismatch:
                continue
        if value is False and type(None) in args and bool not in args:
            return None  # TOML has no null: `false` turns an option off
        raise _Mismatch
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise _NotFinite
            return float(value)
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is Path:
        if isinstance(value, Path):
            return value
        raise _Mismatch
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _Mismatch
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_conform(v, args[0]) for v in value)
        if len(value) != len(args):
            raise _Mismatch
        return tuple(_conform(v, a) for v, a in zip(value, args, strict=True))
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, collections.abc.Mapping):
            raise _Mismatch
        return {_conform(k, args[0]): _conform(v, args[1]) for k, v in value.items()}
    if origin is collections.abc.Callable:
        if callable(value) and not isinstance(value, type):
            return value
        raise _Mismatch
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    raise TypeError(f"no conversion for the option type {hint!r}")  # a bug in a group


def describe(hint: Any) -> str:
    """What a type allows, in words: `a number`, `a list of strings or unset`, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        return " or ".join(describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {_plural(describe(args[0]))}"
        return f"a list [{', '.join(describe(a) for a in args)}]"
    if origin in (dict, collections.abc.Mapping):
        return f"a table of {_plural(describe(args[1]))}"
    if origin is collections.abc.Callable:
        return "a function"
    words = {
        type(None): "false",
        bool: "true or false",
        float: "a number",
        int: "an integer",
        str: "a string",
        Path: "a path",
    }
    if hint in words:
        return words[hint]
    return f"a {getattr(hint, '__name__', hint)} object"


def _plural(text: str) -> str:
    if text.startswith("a list of "):
        return "lists of " + text[len("a list of ") :]
    for article in ("a ", "an "):
        if text.startswith(article):
            return text[len(article) :] + "s"
    return text


def configuration_error(error: BaseException) -> BaseException | None:
    """The `ConfigError`, or the source's `SourceError` (a missing file, an unreachable URL, a
    refused API key, raised when the run starts), that `error` is or was caused by; else None.
    Bytewax raises its own error from the one a partition raised (`__cause__`), so that chain
    is walked; an error raised while another was being handled (`__context__` only) is not
    caused by it, and is a bug to show whole, not a configuration error.

    >>> try:
    ...     try:
    ...         raise ConfigError("bad option")
    ...     except ConfigError:
    ...         {}["typo"]  # a bug in a handler
    ... except KeyError as bug:
    ...     print(configuration_error(bug))
    None
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConfigError | SourceError):
            return error
        seen.add(id(error))
        error = error.__cause__
    return None


def say_configuration_error(error: BaseException) -> bool:
    """Print the configuration error behind `error` as its one line on stderr; False (nothing
    printed) when `error` is not one, for the caller to raise."""
    cause = configuration_error(error)
    if cause is None:
        return False
    print(f"configuration error: {cause}", file=sys.stderr)
    return True


def install_excepthook() -> None:
    """Print an uncaught `ConfigError` or `SourceError` (or a Bytewax error raised from one) as
    its one line (`configuration error: ...`) instead of a traceback; every other exception goes
    to the hook that was there before."""
    previous = sys.excepthook
    if getattr(previous, "config_errors", False):
        return

    def hook(kind: type[BaseException], error: BaseException, trace: Any) -> None:
        if not say_configuration_error(error):
            previous(kind, error, trace)

    hook.config_errors = True  # type: ignore[attr-defined]
    sys.excepthook = hook
