"""A TOML deployment file: the same runs as the keywords, errors people can act on, and the
docs/configuration.md's example file generated from the configuration itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
from bytewax.testing import run_main

from config import FlowConfig, resolve, tables_of
from config.render import to_toml
from data import simulate
from dataflows.air_quality import build_flow
from tests.conftest import ROOT
from tests.test_config import leaves, toml_text

#: The documentation pages that show the errors and the generated example file.
DEPLOYMENT = ROOT / "docs" / "deployment.md"
REFERENCE = ROOT / "docs" / "configuration.md"


@pytest.fixture(scope="module")
def polls_file(tmp_path_factory):
    """8 simulated sensors over 12 hours, with nulls, spikes and dropouts."""
    out = tmp_path_factory.mktemp("sim")
    polls, _labels = simulate.write(simulate.generate(seed=5, n_sensors=8, hours=12), out)
    return polls


#: Runs worth comparing both ways: defaults; every cleaning stage on, standardised feature and a
#: sample; global mode with another detector and no gaps or EPA. `{out}` is the output folder.
RUNS = {
    "defaults": {},
    "cleaning": {
        "cleaning.validation.enabled": True,
        "cleaning.validation.ranges": {"humidity": (0.0, 60.0), "pm1.0_cf_1": (0.0, 400.0)},
        "cleaning.imputation.window": 5,
        "cleaning.imputation.strategy": "median",
        "cleaning.epa.max": 200.0,
        "cleaning.gaps.mode": "fill",
        "cleaning.gaps.offline_after": 10800,
        "cleaning.scaling.fields": ("pm1.0_cf_1",),
        "cleaning.scaling.window": 50,
        "detection.features": ("pm1.0_cf_1_z",),
        "detection.limits": {"pm1.0_cf_1_z": (-6.0, 6.0)},
        "detection.threshold": 0.6,
        "outputs.sample.size": 3,
        "outputs.sample.path": "{out}/sample.jsonl",
    },
    "global": {
        "run.key": "global",
        "run.batch_size": 100,
        "cleaning.imputation.fields": ("humidity", "pm1.0_cf_1"),
        "cleaning.gaps.mode": False,
        "cleaning.epa.enabled": False,
        "detection.n_trees": 5,
        "detection.height": 6,
        "detection.window_size": 36,
        "detection.seed": 3,
        "outputs.sample.size": 10,
        "outputs.sample.by": "global",
        "outputs.sample.seed": 4,
        "outputs.sample.path": "{out}/sample.jsonl",
    },
}
#: The keyword of each setting used above (the README's keyword table).
KEYWORD_OF = {
    "cleaning.validation.enabled": "validate",
    "cleaning.validation.ranges": "ranges",
    "cleaning.imputation.fields": "impute_fields",
    "cleaning.imputation.window": "window",
    "cleaning.imputation.strategy": "strategy",
    "cleaning.epa.enabled": "epa",
    "cleaning.epa.max": "epa_max",
    "cleaning.gaps.mode": "gaps",
    "cleaning.gaps.offline_after": "offline_after",
    "cleaning.scaling.fields": "scale",
    "cleaning.scaling.window": "scale_window",
    "detection.features": "features",
    "detection.limits": "limits",
    "detection.threshold": "threshold",
    "detection.n_trees": "n_trees",
    "detection.height": "height",
    "detection.window_size": "window_size",
    "detection.seed": "seed",
    "outputs.sample.size": "sample",
    "outputs.sample.by": "sample_by",
    "outputs.sample.seed": "sample_seed",
    "outputs.sample.path": "sample_path",
    "run.key": "key",
    "run.batch_size": "batch_size",
}
OUTPUTS = {"anomalies": "output", "readings": "readings", "events": "events"}


def filled(settings, out):
    return {k: v.format(out=out) if isinstance(v, str) else v for k, v in settings.items()}


def outputs_of(out):
    files = sorted(out.glob("*.jsonl"))
    return {f.name: sorted(f.read_text().splitlines()) for f in files}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_from_a_file_equals_the_run_from_keywords(tmp_path, polls_file, name):
    by_file, by_keyword = tmp_path / "file", tmp_path / "keyword"
    for out in (by_file, by_keyword):
        out.mkdir()
    common = {"source.path": str(polls_file), "outputs.dead_letters": "{out}/dead.jsonl"}
    common.update({f"outputs.{o}": f"{{out}}/{o}.jsonl" for o in OUTPUTS})
    settings = {**common, **RUNS[name], "run.progress": False}
    config = tmp_path / "flow.toml"
    config.write_text(toml_text(filled(settings, by_file)))
    run_main(build_flow(config=str(config)))

    keywords = {"progress": None, "dead_letters": f"{by_keyword}/dead.jsonl"}
    keywords.update({kw: f"{by_keyword}/{o}.jsonl" for o, kw in OUTPUTS.items()})
    for location, value in filled(RUNS[name], by_keyword).items():
        off = value is False and location == "cleaning.gaps.mode"  # TOML's false is None
        keywords[KEYWORD_OF[location]] = None if off else value
    run_main(build_flow(str(polls_file), **keywords))

    got, want = outputs_of(by_file), outputs_of(by_keyword)
    assert got == want
    assert got["anomalies.jsonl"] and got["readings.jsonl"]  # the runs did something
    if "outputs.sample.size" in RUNS[name]:
        assert got["sample.jsonl"]


def bytewax_runs(*targets: str, cwd=ROOT) -> list[list[str]]:
    """The stdout lines of `python -m bytewax.run TARGET` for each target, run side by side
    (each must exit 0)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bytewax.run", target],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target in targets
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(out.splitlines())
    return outputs


def test_bytewax_run_takes_a_deployment_file_and_keywords_override_it(tmp_path, polls_file):
    config = tmp_path / "flow.toml"
    settings = {
        "source.path": str(polls_file),
        "detection.threshold": 0.5,
        "detection.detector": "hst",
    }
    config.write_text(toml_text({**settings, "outputs.events": "/dev/null"}))
    keywords = f"{str(polls_file)!r}, threshold=0.5, detector='hst', events='/dev/null'"
    from_file, from_keywords, overridden = bytewax_runs(
        f"dataflows.air_quality:build_flow(config={str(config)!r})",
        f"dataflows.air_quality:build_flow({keywords})",
        f"dataflows.air_quality:build_flow(config={str(config)!r}, threshold=0.7)",
    )
    assert sorted(from_file) == sorted(from_keywords)
    assert 0 < len(overridden) < len(from_file)


def readme_errors():
    """The example errors docs/deployment.md shows, each `(file text, the line printed)`."""
    block = DEPLOYMENT.read_text().split("run with one line that names", 1)[1].split("```")[1]
    return [line for line in block.splitlines() if line.startswith("configuration error")]


#: A file that gives each of docs/deployment.md's example errors.
ERROR_FILES = {
    "[detection] thresold": "[detection]\nthresold = 0.8\n",
    "[source] threshold": "[source]\nthreshold = 0.8\n",
    "[run] shards": "[run]\nshards = 1.5\n",
    "[cleaning.imputation] window": "[cleaning.imputation]\nwindow = 0\n",
}


def test_the_readme_errors_are_what_bytewax_run_prints(tmp_path):
    shown = readme_errors()
    assert len(shown) == len(ERROR_FILES)
    runs = []
    for n, line in enumerate(shown):  # one folder and one process per error, all at once
        text = next(t for key, t in ERROR_FILES.items() if f"flow.toml: {key}:" in line)
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "flow.toml").write_text(text)
        command = [
            sys.executable,
            "-m",
            "bytewax.run",
            "dataflows.air_quality:build_flow(config='flow.toml')",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        runs.append((line, subprocess.Popen(command, cwd=folder, env=env, **pipes)))
    for line, proc in runs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out, err.splitlines()) == (1, "", [line])


def test_a_file_that_is_not_toml_or_not_there_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "flow.toml"
    bad.write_text("[detection\nthreshold = 0.8\n")
    with pytest.raises(ValueError, match=r"flow.toml: not valid TOML: .*line 1"):
        resolve(bad)
    with pytest.raises(ValueError, match=r"missing.toml: no such configuration file"):
        resolve(tmp_path / "missing.toml")


def readme_file() -> str:
    text = REFERENCE.read_text()
    found = re.search(
        r"<!-- flow.toml: generated by `python -m config` -->\n```toml\n(.*?)```", text, re.S
    )
    assert found, "docs/configuration.md lost its generated flow.toml block"
    return found.group(1)


def test_the_readme_example_file_is_the_generated_one():
    assert readme_file() == to_toml(), (
        "docs/configuration.md is stale: air-quality config reference > docs/configuration.md"
    )


def test_the_printed_defaults_are_the_defaults_and_cover_every_option():
    printed = subprocess.run(
        [sys.executable, "-m", "config"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert printed == to_toml()
    assert resolve(tomllib.loads(printed)) == FlowConfig()
    assert shown_options(printed) == set(leaves(tables_of(FlowConfig())))


def shown_options(text: str) -> set[str]:
    """`table.key` of every option line of a TOML text, commented out or not; a table that is
    an option's value (`[cleaning.validation.ranges]`) counts as that option."""
    shown, table = set(), ""
    for line in text.splitlines():
        header = re.match(r"^\[([\w.]+)\]$", line)
        if header:
            table = header.group(1)
            shown.add(table)
        key = re.match(r"^(?:# )?(\w+) =", line)
        if key:
            shown.add(f"{table}.{key.group(1)}")
    return shown & set(leaves(tables_of(FlowConfig())))


def test_a_resolved_file_prints_back_as_itself(tmp_path):
    path = tmp_path / "flow.toml"
    path.write_text(toml_text({"detection.threshold": 0.85, "run.progress": False}))
    shown = subprocess.run(
        [sys.executable, "-m", "config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    again = resolve(tomllib.loads(shown))
    assert again == resolve(path)
    assert again.detection.threshold == 0.85 and again.run.progress is None


def test_the_default_file_runs_the_shipped_flow(tmp_path):
    """`python -m config > flow.toml` then a deployment run: the README's default flow."""
    (tmp_path / "flow.toml").write_text(to_toml())
    from_file, shipped = bytewax_runs(
        "dataflows.air_quality:build_flow(config='flow.toml')",
        "dataflows.air_quality:flow",
        cwd=tmp_path,
    )
    assert from_file and sorted(from_file) == sorted(shipped)
