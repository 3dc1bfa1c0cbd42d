"""The subcommands: one module each in this folder, found by name.

A subcommand module defines `HELP` (one line), `ORDER` (its place in `--help`), `add_arguments(
parser)` and `run(args) -> int` (the exit code). Adding a subcommand is adding one module; no
list to edit. `serve` is kept for the live view (docs/live-view.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

#: Names no module may take for another purpose.
RESERVED = {"serve": "the live web view (docs/live-view.md)"}


def commands() -> dict[str, ModuleType]:
    """Every subcommand module by its command name (`from_api` → `from-api`), in `ORDER`."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append((getattr(module, "ORDER", 100), info.name.replace("_", "-"), module))
    return {name: module for _order, name, module in sorted(found)}
