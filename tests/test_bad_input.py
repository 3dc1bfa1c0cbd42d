"""No input stops the air-quality flow: the corpus of bad lines (`tests/corpus.py`) mixed into the
shipped polls, through the whole flow with its real file sinks, on 1 worker and on 2 processes.

Each kind must give exactly what the corpus says (a reading, or a dead letter with its reason, at
its line), every dead letter must be strict JSON, and the shipped sensors' anomalies must be those
of a run on the shipped file alone: the bad lines change nothing around them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from bytewax.errors import BytewaxRuntimeError
from bytewax.testing import TestingSink, run_main

from config.options import configuration_error
from core.dead_letters import RAW_LIMIT, json_safe
from core.json_lines import to_line
from core.readings import DeadLetter, Reading
from dataflows.air_quality import build_flow
from sources import shards
from sources.poller import API_KEY_ENV, PurpleAirAuthError
from tests.conftest import ROOT, run_processes
from tests.corpus import (
    NEW_SENSOR,
    READING,
    SHIPPED,
    STAMP,
    doc,
    dumps,
    good_row,
    kinds,
    write_mixed,
)
from tests.test_recovery import drain

ORIGIN = re.compile(r"^bad\.jsonl:(\d+)(?:#row(\d+))?$")


def strict_json(line: str):
    """json.loads that refuses NaN and Infinity (which JSON does not have)."""

    def refuse(token):
        raise ValueError(f"{token} in a written line")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    path = out / "bad.jsonl"
    return path, write_mixed(path)


@pytest.fixture(scope="module")
def clean_anomalies():
    got = []
    run_main(build_flow(str(SHIPPED), output=TestingSink(got), events=TestingSink([])))
    return {to_line(r) for r in got}


def run_one_worker(path: Path, out: Path) -> dict:
    totals = []
    files = {name: out / f"{name}.jsonl" for name in ("output", "dead_letters", "readings")}
    flow = build_flow(
        str(path),
        **{k: str(v) for k, v in files.items()},
        events="/dev/null",
        totals=TestingSink(totals),
    )
    run_main(flow)
    [counts] = totals
    return {"totals": counts, **{k: v.read_text().splitlines() for k, v in files.items()}}


def run_two_processes(path: Path, out: Path) -> dict:
    files = {name: out / f"{name}.jsonl" for name in ("output", "dead_letters", "readings")}
    options = ", ".join(f"{k}={str(v)!r}" for k, v in files.items())
    target = f"dataflows.air_quality:build_flow({str(path)!r}, {options}, events='/dev/null')"
    logs = run_processes(target, timeout=300)
    [line] = [m for log in logs for m in re.findall(r"totals: (.*)", log)]
    totals = {k: int(v) for k, v in (part.split("=") for part in line.split(", "))}
    return {"totals": totals, **{k: v.read_text().splitlines() for k, v in files.items()}}


@pytest.fixture(scope="module", params=["1 worker", "2 processes"])
def run(request, corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param.replace(" ", "_"))
    runner = run_one_worker if request.param == "1 worker" else run_two_processes
    return runner(corpus[0], out)


def test_every_kind_becomes_what_the_corpus_says(corpus, run):
    _, at = corpus
    by_line: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for line in run["dead_letters"]:
        letter = strict_json(line)
        assert set(letter) == {"reason", "origin", "raw"}
        match = ORIGIN.match(letter["origin"])
        assert match, letter["origin"]
        by_line[int(match[1])].append((int(match[2] or 0), letter["reason"]))
    assert set(by_line) <= set(at), "a dead letter from a good line"
    for number, kind in at.items():
        reasons = [reason for _row, reason in sorted(by_line.get(number, []))]
        wanted = [w for w in kind.want if w != READING]
        assert len(reasons) == len(wanted), (kind.name, reasons)
        for reason, want in zip(reasons, wanted, strict=True):
            assert reason.startswith(want), (kind.name, reason, want)
    new = [strict_json(r) for r in run["readings"]]
    new = [r for r in new if r["sensor_index"] >= NEW_SENSOR]
    assert len(new) == sum(k.want.count(READING) for k in at.values())


def test_counts_add_up_and_anomalies_are_those_of_the_clean_file(corpus, run, clean_anomalies):
    _, at = corpus
    shipped_rows = sum(len(json.loads(line)["data"]) for line in SHIPPED.read_text().splitlines())
    rows_in = shipped_rows + sum(len(kind.want) for kind in at.values())
    totals = run["totals"]
    assert totals["readings"] + totals["dead_letters"] == rows_in
    assert totals["readings"] == len(run["readings"])
    assert totals["dead_letters"] == len(run["dead_letters"])
    assert len(at) == len(kinds()) >= 40
    assert set(run["output"]) == clean_anomalies
    assert len(run["output"]) == len(clean_anomalies) > 300


def test_huge_and_non_finite_raw_inputs_are_written_bounded_and_strict(corpus, run):
    _, at = corpus
    lines = {kind.name: n for n, kind in at.items()}
    raws = {}
    for line in run["dead_letters"]:
        letter = strict_json(line)
        raws[int(ORIGIN.match(letter["origin"])[1])] = letter["raw"]
        assert len(line) < 3 * RAW_LIMIT
    assert raws[lines["5 MB of garbage"]] == {"prefix": "x" * RAW_LIMIT, "bytes": 5_000_000}
    huge = raws[lines["a 1 MB string where a number belongs"]]
    assert huge["characters"] > 1_000_000 and huge["prefix"].startswith(f"[{NEW_SENSOR},")
    assert raws[lines["NaN"]][4] == "NaN"
    assert raws[lines["-1e999"]][4] == "-Infinity"
    assert "caf\\xe9" in raws[lines["latin-1 byte in a string"]]
    assert raws[lines["100,000 open brackets"]]["bytes"] == 100_000


def run_command(target: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    env.pop(API_KEY_ENV, None)
    command = [sys.executable, "-m", "bytewax.run", target]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("'nope.jsonl'", "configuration error: [source] path: no such file: nope.jsonl"),
        (
            "'http://127.0.0.1:9/x.json'",
            "configuration error: cannot reach http://127.0.0.1:9/x.json",
        ),
    ],
)
def test_a_configuration_error_found_at_build_is_one_line(source, line):
    done = run_command(f"dataflows.air_quality:build_flow({source})")
    assert done.returncode == 1
    [printed] = done.stderr.splitlines()
    assert printed.startswith(line)


def test_a_configuration_error_found_when_the_run_starts_ends_with_its_one_line(monkeypatch):
    """No API key is found when the poller's partition is built: Bytewax's own panic message
    comes first (it prints it before Python sees the error), then the one line naming it."""
    done = run_command("dataflows.air_quality:build_flow('purpleair')", RUST_BACKTRACE="0")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"configuration error: no PurpleAir API key: set the environment variable {API_KEY_ENV}"
    )
    assert "Traceback" not in done.stderr
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(BytewaxRuntimeError) as failure:
        run_main(build_flow("purpleair"))
    assert isinstance(configuration_error(failure.value), PurpleAirAuthError)
    assert configuration_error(ValueError("a bug of ours")) is None


def test_a_line_too_long_to_hold_is_one_dead_letter_read_no_further(tmp_path, monkeypatch):
    """With the limit at 1,000 bytes: a 5,000-byte line and a 3,000-byte last line without a
    newline are dead letters with their first bytes and lengths; every shard resumes past them."""
    monkeypatch.setattr(shards, "MAX_LINE_BYTES", 1000)
    small = [dumps(doc([good_row(NEW_SENSOR + i, STAMP + 120 * i)])) for i in range(3)]
    path = tmp_path / "long.jsonl"
    path.write_bytes(
        small[0] + b"\n" + b"x" * 5000 + b"\n" + small[1] + b"\n" + small[2] + b"\n" + b"y" * 3000
    )
    source = shards.ShardedFileSource(path, shards=2, batch_size=1)
    by_part = {p: drain(source.build_part("read", p, None)) for p in source.list_parts()}
    items = [i for batches in by_part.values() for batch, _ in batches for i in batch]
    letters = [i for i in items if isinstance(i, DeadLetter)]
    assert sorted((d.origin, d.reason) for d in letters) == [
        ("long.jsonl:2", "line of 5001 bytes, longer than 1000"),
        ("long.jsonl:5", "line of 3000 bytes, longer than 1000"),
    ]
    assert [json_safe(d.raw) for d in sorted(letters, key=lambda d: d.origin)] == [
        {"prefix": "x" * 1000, "bytes": 5001},
        {"prefix": "y" * 1000, "bytes": 3000},
    ]
    assert sorted(i.sensor_index for i in items if isinstance(i, Reading)) == [
        NEW_SENSOR + i for i in range(3)
    ]
    for part, batches in by_part.items():  # resumed from any snapshot, a shard goes on exactly
        for k, (_, at) in enumerate(batches):
            rest = [
                repr(i) for batch, _ in drain(source.build_part("read", part, at)) for i in batch
            ]
            assert rest == [repr(i) for batch, _ in batches[k + 1 :] for i in batch]
