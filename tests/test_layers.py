"""The project's folders import one way: each from its own layer's lower ones only.

Every module's imports are read with `ast` (those inside functions and under `TYPE_CHECKING`
too), so a late import cannot hide an upward dependency. Folders on the same layer do not
import each other (the stages are independent of one another; sinks and the engine too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Each top-level folder's layer: a folder imports its own modules and lower layers only.
LAYERS = {
    "core": 0,  # the shared records: readings' dead letters, redaction, configuration errors
    "stats": 1,  # streaming statistics
    "sources": 2,  # reading input into readings and dead letters
    "data": 3,  # the shipped data's simulator and its quality-control labels
    "preparation": 3,  # the stages: quality control, corrections, gaps, areas
    "imputers": 3,
    "detectors": 3,
    "columns": 4,  # the engine: the stages over arrays of many sensors' readings
    "sinks": 4,  # writing records out
    "config": 5,  # the options, checked before any data is read
    "viewer": 5,  # the live view over a database sink
    "dataflows": 6,  # wiring the engine, sources and sinks into Bytewax
    "evaluation": 7,  # measuring the detectors and the flow
    "air_quality_stream": 7,  # the command
}
#: The project's users, above every layer: they import anything, and each other's helpers.
USERS = {"benchmarks", "tests"}


def folders() -> list[str]:
    """Every top-level folder of the project holding Python modules."""
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.py"))
    )


def imported(path: Path) -> list[tuple[int, str]]:
    """The absolute modules `path` imports, anywhere in it, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(folder: str) -> list[str]:
    """Each import in `folder` of a project folder on the same or a higher layer."""
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module in imported(path):
            top = module.split(".")[0]
            if top == folder or top not in LAYERS:
                continue
            if LAYERS[top] >= LAYERS[folder]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


def test_every_folder_has_a_layer() -> None:
    assert set(folders()) - set(LAYERS) - USERS == set()


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_imports_point_down(folder: str) -> None:
    assert violations(folder) == []


def test_an_upward_import_is_found(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dataflows.steps import SensorConfig\n")
    assert imported(module) == [(2, "dataflows.steps")]
