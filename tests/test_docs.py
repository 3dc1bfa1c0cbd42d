"""Every shell block of README.md and docs/*.md runs, as a reader would run it, on the shipped
data; the README's figures are what the commands print.

Each page runs in its own scratch folder that links to the checkout's files (so the commands
write there, not into the checkout), with `air-quality` and `python` from this interpreter. A
block's info string says how it runs: `sh` as it is; `sh live-api` against the fake PurpleAir
API (`tests/fake_purpleair.py`, which accepts the docs' placeholder key), with its URL and a
short interval added to each `air-quality run --source purpleair`; `sh needs-shared` only when
`../shared/data` is there; `sh skip="reason"` never (benchmarks, placeholders, minute-long runs
that other tests cover). A block without a known info string fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from data import simulate
from tests.fake_purpleair import FakePurpleAir

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```sh(?P<info>[^\n]*)\n(?P<body>.*?)^```", re.M | re.S)
SKIP = re.compile(r'^skip="(?P<reason>[^"]+)"$')
#: The docs' placeholder key, which the fake API takes as valid.
DOCS_KEY = "your-read-key"
#: Seconds a block may take.
TIMEOUT = 300
#: The README's figure of the detection quality on the shipped data: (precision, recall).
STATED = re.search(
    r"\(precision (\d\.\d+), recall\s+(\d\.\d+)", (ROOT / "README.md").read_text()
).groups()
#: What a block's output must contain, by a piece of its text.
EXPECT = {
    "--metrics-port": "air_quality_readings_total",
    "config explain threshold": "[detection] threshold",
    "evaluate quality-control": "sensor_fault",
    "evaluate detection anomalies.jsonl": f"precision: {STATED[0]}, recall (episodes, dropouts "
    f"excluded): {STATED[1]}",
}


def same_results_on_two_processes(folder: Path) -> None:
    """The README's two-process run: its stdout is JSON lines only, the two workers' lines."""
    two = (folder / "two-processes.jsonl").read_text().splitlines()
    assert two and all(isinstance(json.loads(line), dict) for line in two)
    assert sorted(two) == sorted((folder / "two-workers.jsonl").read_text().splitlines())


#: Checks of what a block wrote, by a piece of its text.
CHECKS = {"air-quality run -p 2 > two-processes.jsonl": same_results_on_two_processes}


def blocks(page: Path) -> list[tuple[int, str, str]]:
    """The page's shell blocks: (line, info string, text)."""
    text = page.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m["info"].strip(), m["body"])
        for m in BLOCK.finditer(text)
    ]


def quick_start() -> list[str]:
    """The README's quick-start commands."""
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return BLOCK.search(section)["body"].strip().splitlines()


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """A folder of `air-quality` and `python` that run this interpreter on this checkout."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, command in (("air-quality", "-m air_quality_stream"), ("python", "")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" {command} "$@"\n')
        script.chmod(0o755)
    return bin_dir


def scratch(tmp_path: Path) -> Path:
    """A folder that sees the checkout's files (links) and, beside it, `../shared`."""
    folder = tmp_path / "repo"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv") and not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry)
    if SHARED.is_dir():
        (tmp_path / "shared").symlink_to(SHARED.parent)
    return folder


def run_block(text: str, folder: Path, tools: Path, env: dict[str, str]) -> str:
    """Run a block with bash (stop at the first failing command); its stdout and stderr."""
    base = {k: v for k, v in os.environ.items() if k != "PURPLEAIR_API_KEY"}
    env = {**base, **env, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", text],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def live(text: str, base_url: str) -> str:
    """A live-API block pointed at the fake API, polling every 0.2 s."""
    return text.replace(
        "air-quality run --source purpleair",
        f"air-quality run --base-url {base_url} --purpleair-interval 0.2 --source purpleair",
    )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_shell_block_of_the_page_runs(page, tmp_path, tools):
    found = blocks(page)
    if page.name == "README.md":  # the quick start: installs, run by .ci/run (the tests) ...
        found = found[1:]
    folder = scratch(tmp_path)
    polls = simulate.generate(seed=3, n_sensors=5, hours=0.2).polls
    for line, info, text in found:
        where = f"{page.name}:{line}"
        if SKIP.match(info):
            continue
        if info == "needs-shared" and not SHARED.is_dir():
            continue
        assert info in ("", "live-api", "needs-shared"), f"{where}: unknown block kind {info!r}"
        if info == "live-api":
            with FakePurpleAir(polls, api_key=DOCS_KEY) as server:  # the key, as exported above
                env = {"PURPLEAIR_API_KEY": DOCS_KEY}
                output = run_block(live(text, server.base_url), folder, tools, env)
        else:
            output = run_block(text, folder, tools, {})
        for piece, expected in EXPECT.items():
            if piece in text:
                assert expected in output, f"{where}: {expected!r} not in its output"
        for piece, check in CHECKS.items():
            if piece in text:
                check(folder)


def test_the_quick_start_runs_and_gives_the_readme_figures(tmp_path, tools):
    """Its first command installs the command and runs it (`air-quality run`): stdout is
    only JSON lines, as many as the README says, and its summary figures are the README's."""
    first, second = quick_start()
    assert first.endswith("&& .venv/bin/air-quality run"), first
    assert second.endswith(".venv/bin/python -m pytest"), second
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "air_quality_stream", "run", "--summary-json", "summary.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    readme = (ROOT / "README.md").read_text()
    stated = int(re.search(r"JSON lines \((\d+) of them", readme)[1])
    totals = json.loads((tmp_path / "summary.json").read_text())["totals"]
    assert len(lines) == stated == totals["anomalies"]
    assert f"readings      {totals['readings']:,}" in readme


def test_every_block_has_a_known_kind():
    for page in PAGES:
        for line, info, _text in blocks(page):
            assert info in ("", "live-api", "needs-shared") or SKIP.match(info), (
                f"{page.name}:{line}: {info!r}"
            )


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
