"""Print, check and explain a configuration, and write its reference page.

    air-quality config show                  # every option, its default and what it does (TOML)
    air-quality config show -c flow.toml     # that file (and any flags) as the run will use it
    air-quality config check -c flow.toml    # the file, then what a run checks before it starts
    air-quality config explain threshold     # one option (a flag, a key or [table] key) or table
    air-quality config reference             # the reference page (docs/configuration.md)

`show` and `check` take the same flags as `run`. A configuration error is one line and exit
code 1 (as `python -m config`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from air_quality_stream.cli import CONFIG_ERROR
from air_quality_stream.flags import Flag, add_flags, default_of, flags

HELP = "print, check or explain a configuration; write its reference page"
ORDER = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the configuration as annotated TOML")
    check = actions.add_parser("check", help="check a configuration as a run would, not run")
    for sub in (show, check):
        sub.add_argument("-c", "--config", metavar="FILE", help="a flow.toml")
        add_flags(sub)
    explain = actions.add_parser("explain", help="what an option or a table does")
    explain.add_argument("name", help="a flag (threshold), a key ([detection] threshold) or table")
    actions.add_parser("reference", help="print the configuration's reference page (Markdown)")


def _resolved(args: argparse.Namespace):  # noqa: ANN202 - a FlowConfig
    from air_quality_stream.flags import overrides
    from config.tables import merge, read_toml, resolve

    if args.config:
        resolve(args.config)
    return resolve(merge(read_toml(args.config) if args.config else {}, overrides(args)))


def run(args: argparse.Namespace) -> int:
    from config.render import to_toml
    from core.errors import ConfigError

    try:
        if args.action == "show":
            sys.stdout.write(to_toml(_resolved(args)))
        elif args.action == "check":
            from air_quality_stream.preflight import check

            check(_resolved(args))
            print(f"ok: {args.config or 'the defaults'} can run", file=sys.stderr)
        elif args.action == "explain":
            print(explain(args.name))
        else:
            sys.stdout.write(reference())
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return CONFIG_ERROR
    return 0


def _find(name: str) -> tuple[list[Flag], bool]:
    """The options a name means (a flag or keyword, `[table] key`, `table.key`), or a table's
    options; and whether it named a table."""
    words = name.strip().replace("[", "").replace("]", " ").split()
    dotted = ".".join(words).replace("-", "_")
    options = [f for f in flags() if f.name == name.strip().replace("_", "-")]
    options = options or [f for f in flags() if ".".join((*f.path, f.option)) == dotted]
    if options:
        return options, False
    return [f for f in flags() if ".".join(f.path) == dotted], True


def _allowed(flag: Flag) -> str:
    from config.options import CHOICES, MAX, MIN, bounds, describe

    meta = flag.spec.metadata
    allowed = describe(flag.hint)
    if meta[CHOICES]:
        allowed = " or ".join(repr(c) for c in meta[CHOICES])
    if meta[MIN] is not None or meta[MAX] is not None:
        allowed += f", {bounds(meta[MIN], meta[MAX])}"
    return allowed


def explain(name: str) -> str:
    """An option's or a table's explanation, for `config explain`."""
    from config.options import DOC
    from core.errors import ConfigError

    found, table = _find(name)
    if not found:
        import difflib

        close = difflib.get_close_matches(name, [f.name for f in flags()], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{name}: no such option or table{hint}")
    lines = [f"[{'.'.join(found[0].path)}]: {_table_doc(found[0])}", ""] if table else []
    for flag in found:
        default = default_of(flag)
        lines += [
            f"{flag.toml}   (flag --{flag.name})",
            f"  {flag.spec.metadata[DOC]}",
            f"  allowed: {_allowed(flag)}",
            f"  default: {'unset' if default is None else default}",
        ]
    return "\n".join(lines)


def _table_doc(flag: Flag) -> str:
    from config.tables import groups

    for path, cls in groups():
        if path == flag.path:
            return " ".join((cls.__doc__ or "").split())
    return ""


def reference() -> str:
    """The configuration's reference page: every table, its options, flags, types, defaults."""
    from config.render import to_toml
    from config.tables import groups

    out = [
        "# Configuration reference",
        "",
        "Generated from the typed configuration (`config/flow.py`) by "
        "`air-quality config reference > docs/configuration.md`; a test fails when this page",
        "differs from what the command prints. Each option is a key of its table in a",
        "`flow.toml` (`air-quality config show > flow.toml` writes one with every default) and a",
        "flag of `air-quality run`, `backfill`, `config show` and `config check`. A value",
        "`false` turns an optional setting off.",
        "",
    ]
    by_path: dict[tuple[str, ...], list[Flag]] = {}
    for flag in flags():
        by_path.setdefault(flag.path, []).append(flag)
    for path, cls in groups():
        options = by_path.get(path)
        if not options:
            continue
        out += [f"## [{'.'.join(path)}]", "", " ".join((cls.__doc__ or "").split()), ""]
        out += ["| key | flag | allowed | default | what it does |", "|---|---|---|---|---|"]
        for flag in options:
            default = default_of(flag)
            shown = "unset" if default is None else f"`{_plain(default)}`"
            doc = flag.spec.metadata["doc"].replace("|", "\\|")
            allowed = _allowed(flag).replace("|", "\\|")
            out.append(f"| `{flag.option}` | `--{flag.name}` | {allowed} | {shown} | {doc} |")
        out.append("")
    out += [
        "## The example file",
        "",
        "Every option with its default, as `air-quality config show` (or `python -m config`)",
        "prints it: keep what you change.",
        "",
        "<!-- flow.toml: generated by `python -m config` -->",
        "```toml",
        to_toml().rstrip("\n"),
        "```",
        "<!-- end of flow.toml -->",
        "",
    ]
    return "\n".join(out)


def _plain(value: object) -> str:
    """A default as TOML shows it."""
    from config.render import value_text

    if dataclasses.is_dataclass(value):
        return str(value)
    return value_text(value).replace("|", "\\|")
