"""Settings that would lose data or fail part-way are configuration errors: one line naming the
key, before any data is read, with the exit code `python -m config` uses (1).

- An output that keeps nothing, two JSON-lines outputs into one file, a JSON-lines output into a
  database's file; several outputs into one database, each its own table, stay allowed.
- Numbers that are not finite, bounds that would not fit in memory, field names the flow's own
  records use, a neighbour radius that reaches too many areas, a file in a missing folder.
- A TOML file that is not UTF-8, nested too deeply, or not TOML.
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from bytewax.testing import TestingSink, run_main

from config import ConfigError, resolve
from config.__main__ import main as print_config
from config.flow import RECORD_FIELDS
from data import simulate
from dataflows.air_quality import build_flow
from tests.conftest import ROOT


def refused(**options) -> str:
    """The one-line error `resolve` gives for `options`."""
    with pytest.raises(ConfigError) as raised:
        resolve(**options)
    message = str(raised.value)
    assert "\n" not in message
    return message


# --- outputs that would lose data ----------------------------------------------------------


@pytest.mark.parametrize("target", ["sqlite:///", "sqlite:///:memory:"])
@pytest.mark.parametrize("option", ["output", "readings", "events", "dead_letters", "incidents"])
def test_an_in_memory_database_keeps_nothing(option, target):
    message = refused(**{option: target})
    table = "anomalies" if option == "output" else option
    assert message.startswith(f"[outputs] {table}: {target!r} keeps nothing")


def test_two_json_lines_outputs_into_one_file_are_refused(tmp_path):
    same = str(tmp_path / "out.jsonl")
    (tmp_path / "sub").mkdir()
    other_spelling = str(tmp_path / "sub" / ".." / "out.jsonl")
    message = refused(output=same, events=other_spelling)
    assert message.startswith("[outputs] events:")
    assert "is also the file of [outputs] anomalies" in message
    assert "[outputs] incidents:" in refused(dead_letters=same, incidents=same)
    assert "[outputs.sample] path:" in refused(readings=same, sample=3, sample_path=same)
    hook = {"url": "https://alerts.example/hook", "dead_letters": same}
    assert "[outputs.webhook] dead_letters:" in refused(output=same, webhook=hook)


def test_a_json_lines_output_into_a_database_file_is_refused(tmp_path):
    data = tmp_path / "results.data"
    message = refused(output=f"sqlite:///{data}", incidents=str(data))
    assert message.startswith("[outputs] incidents:")
    assert "is the database file of [outputs] anomalies" in message
    existing = tmp_path / "made-earlier.log"
    sqlite3.connect(existing).execute("CREATE TABLE t (x)").connection.close()
    assert "is an SQLite database file" in refused(events=str(existing))


def test_a_json_lines_output_in_a_missing_folder_is_refused_like_a_database(tmp_path):
    message = refused(events=str(tmp_path / "nowhere" / "events.jsonl"))
    assert message.startswith("[outputs] events: the folder ") and "does not exist" in message
    assert "does not exist" in refused(output=str(tmp_path / "nowhere" / "a.db"))
    assert "is a folder" in refused(readings=str(tmp_path))


def test_several_outputs_into_one_database_and_discarded_streams_stay_allowed(tmp_path):
    db = str(tmp_path / "all.db")
    config = resolve(output=db, readings=db, events=db, dead_letters=db, incidents=db)
    assert config.outputs.incidents == db
    resolve(events="/dev/null", dead_letters="/dev/null", readings="-", output="-")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # checked without being opened: opening a pipe with no reader would block
    resolve(events=str(pipe), dead_letters=str(pipe))


# --- checks that match what runs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "start"),
    [
        ({"threshold": math.nan}, "[detection] threshold: nan is not finite"),
        ({"epa_max": math.inf}, "[cleaning.epa] max: inf is not finite"),
        ({"ranges": {"humidity": (0, math.nan)}}, "[cleaning.validation] ranges: "),
        ({"limits": {"pm1.0_cf_1": (-math.inf, 1.0)}}, "[detection] limits: "),
        ({"window": 10**9}, "[cleaning.imputation] window: 1000000000 is out of range"),
        ({"scale": ["humidity"], "scale_window": 10**9}, "[cleaning.scaling] window:"),
        ({"height": 40}, "[detection] height: 10 trees of height 40 are"),
        ({"n_trees": 10**6, "height": 1}, "[detection] height:"),
        ({"shards": 10**9}, "[run] shards: 1000000000 is out of range; allowed: at most 1,024"),
        ({"batch_size": 10**9}, "[run] batch_size: 1000000000 is out of range"),
        ({"spatial_window": 10**9}, "[spatial] window: 1000000000 is out of range"),
        ({"purpleair": {"timeout": (-1, 30)}}, "[source.purpleair] timeout: (-1.0, 30.0) is out"),
        ({"webhook": {"url": "http://x", "timeout": (5, -1)}}, "[outputs.webhook] timeout:"),
        ({"database": {"timeout": -1}}, "[outputs.database] timeout: -1.0 is out of range"),
        ({"database": {"timeout": 1e9}}, "[outputs.database] timeout: 1000000000.0 is out"),
        ({"features": ["time"]}, "[detection] features: 'time' is a field of the flow's own"),
        ({"features": ["kind"]}, "[detection] features: 'kind' is a field of the flow's own"),
        ({"impute_fields": ["score"]}, "[cleaning.imputation] fields: 'score' is a field"),
        ({"spatial_field": "sensor_index"}, "[spatial] field: 'sensor_index' is a field"),
        ({"area_km": 1, "radius_km": 1000}, "[spatial] radius_km: 1000.0 is out of range"),
    ],
)
def test_an_option_the_run_cannot_do_names_its_key_and_what_is_allowed(options, start):
    message = refused(**options)
    assert message.startswith(start)
    assert "allowed: " in message


def test_the_reserved_names_are_every_field_the_flows_records_have_of_their_own(tmp_path):
    """What the flow writes beside the measurements (the detector's features, the AQI) must be
    in RECORD_FIELDS, or a feature of that name would overwrite it."""
    polls, _ = simulate.write(simulate.generate(seed=5, n_sensors=8, hours=12), tmp_path)
    anomalies, readings = [], []
    sinks = {"output": TestingSink(anomalies), "readings": TestingSink(readings)}
    run_main(build_flow(str(polls), events="/dev/null", dead_letters="/dev/null", **sinks))
    assert anomalies and readings
    config = resolve()
    own = {key for record in [*anomalies, *readings] for key in record}
    own -= {*config.detection.features, "aqi"}
    assert own <= set(RECORD_FIELDS)


def test_the_largest_allowed_values_build_quickly():
    began = time.perf_counter()
    build_flow(area_km=1, radius_km=2, window=10_000, shards=1024, batch_size=1_000_000)
    assert time.perf_counter() - began < 30  # a radius of 1000 area sides never finished
    assert resolve(n_trees=1, height=15).detection.height == 15  # 2^16 nodes: the most
    assert "65,536 nodes" in refused(n_trees=2, height=15)


def test_a_bad_option_is_refused_before_the_source_is_opened(tmp_path):
    missing = tmp_path / "never-read.jsonl"
    with pytest.raises(ConfigError, match=r"^\[detection\] threshold: nan is not finite"):
        build_flow(str(missing), threshold=math.nan)


# --- bad TOML of any kind -----------------------------------------------------------------

BAD_TOML = {
    "not UTF-8": b'[run]\nkey = "\xff\xfe"\n',
    "nested arrays": b"a = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "nested tables": b"a = " + b"{b = " * 5_000 + b"1" + b"}" * 5_000 + b"\n",
    "syntax": b"[run\nkey = 1\n",
    "a NUL": b'a = "\x00"\n',
    "nan threshold": b"[detection]\nthreshold = nan\n",
}


@pytest.mark.parametrize("case", sorted(BAD_TOML))
def test_a_bad_toml_file_is_one_line_and_exit_code_1(tmp_path, case, capsys):
    path = tmp_path / "flow.toml"
    path.write_bytes(BAD_TOML[case])
    assert print_config([str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"configuration error: {path}: ")
    assert captured.err.count("\n") == 1


def test_bytewax_run_shows_each_as_one_line_with_exit_code_1(tmp_path):
    """What used to end in a traceback (or run and keep nothing) under `bytewax.run`."""
    cases = {
        "[outputs]\nevents = 'nowhere/events.jsonl'\n": "[outputs] events: the folder 'nowhere'",
        "[outputs]\nanomalies = 'sqlite:///'\n": "[outputs] anomalies: 'sqlite:///' keeps nothing",
        '[run]\nkey = "\xff"\n': "not valid TOML: not UTF-8 text",
    }
    runs = []
    for n, (text, line) in enumerate(cases.items()):
        folder = tmp_path / str(n)
        folder.mkdir()
        (folder / "flow.toml").write_bytes(text.encode("latin-1"))
        command = [sys.executable, "-m", "bytewax.run", "dataflows.air_quality:build_flow("
                   "config='flow.toml')"]  # fmt: skip
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
        runs.append((line, subprocess.Popen(command, cwd=folder, env=env, **pipes)))
    for line, proc in runs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out, len(err.splitlines())) == (1, "", 1), err
        assert err.startswith("configuration error: flow.toml: ") and line in err
