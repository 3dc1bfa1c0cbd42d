"""The whole air-quality flow: against an independent oracle, on 1 and 2 workers and 2 processes."""

from __future__ import annotations

import json
from calendar import timegm
from pathlib import Path
from time import strptime

import pytest
from bytewax.testing import TestingSink, TestingSource, cluster_main, run_main

from core.readings import DeadLetter, Reading
from data import simulate
from dataflows.air_quality import build_flow
from tests.conftest import payload, run_processes, write_lines
from tests.oracle import reference_anomalies


def epoch(iso: str) -> int:
    return timegm(strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def as_set(records):
    return {(r["sensor_index"], epoch(r["time"]), r["score"]) for r in records}


@pytest.fixture(scope="module")
def polls_file(tmp_path_factory) -> Path:
    """8 simulated sensors over 12 hours (2,800-odd rows, with nulls, spikes and dropouts)."""
    out = tmp_path_factory.mktemp("sim")
    polls, _labels = simulate.write(simulate.generate(seed=5, n_sensors=8, hours=12), out)
    return polls


#: The quality-control rules off and the example's HalfSpaceTrees: the oracle below knows only
#: imputation and river's detector.
NO_QC = {"validate": False, "channels": False, "flatline": None, "detector": "hst"}
#: The example's detector alerts often, so comparing layouts compares many alerts.
HST = {"detector": "hst"}


def run_flow(source, workers=1, **options):
    sinks = {name: [] for name in ("output", "dead_letters", "readings", "totals")}
    flow = build_flow(source, **{n: TestingSink(s) for n, s in sinks.items()}, **options)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return sinks


@pytest.mark.parametrize(("workers", "threshold"), [(1, 0.7), (2, 0.7), (2, 0.55)])
def test_anomalies_equal_the_independent_oracle(polls_file, workers, threshold):
    got = run_flow(str(polls_file), workers, threshold=threshold, **NO_QC)
    want = reference_anomalies(polls_file, threshold=threshold)
    assert len(want) >= 4
    assert as_set(got["output"]) == want
    assert len(got["output"]) == len(want)
    [totals] = got["totals"]
    rows = sum(len(json.loads(line)["data"]) for line in polls_file.read_text().splitlines())
    assert totals["readings"] == len(got["readings"]) == rows
    assert "dead_letters" not in totals and got["dead_letters"] == []
    assert totals["anomalies"] == len(want)
    assert totals["imputed:humidity"] > 0 and totals["imputed:pm1.0_cf_1"] > 0
    assert totals["status:warming_up"] == 8 * 72


def test_readings_list_what_was_imputed_and_warm_up_is_never_an_anomaly(polls_file):
    got = run_flow(str(polls_file))
    by_status = {}
    for r in got["readings"]:
        by_status.setdefault(r["status"], []).append(r)
    assert all(r["score"] is None for r in by_status["warming_up"])
    imputed = [r for r in got["readings"] if r["imputed"]]
    assert imputed and all(r["values"][f] is not None for r in imputed for f in r["imputed"])
    counted = sum(len(r["imputed"]) for r in got["readings"])
    assert counted == sum(v for k, v in got["totals"][0].items() if k.startswith("imputed:"))
    # a score alert is a scored reading; a rule's (a fault, off the neighbours) may be any
    score_times = {(r["sensor_index"], r["time"]) for r in got["output"] if "score" in r["reasons"]}
    assert score_times <= {(r["sensor_index"], r["time"]) for r in by_status["scored"]}


def test_bad_input_goes_to_dead_letters_and_every_count_adds_up(tmp_path):
    good = [[s, 1000 + t, 40.0, 5.0 + (t % 3)] for t in range(100) for s in (1, 2)]
    bad_rows = [[3, 1000, "x", 1.0], [None, 1000, 1.0, 1.0], [4, 1000, 1.0]]
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            payload(good[:100]),
            "{truncated",
            payload(bad_rows),
            {"data": [[5, 1]]},
            payload(good[100:]),
        ],
    )
    got = run_flow(str(path), workers=2)
    [totals] = got["totals"]
    rows_in = len(good) + 1 + len(bad_rows) + 1
    assert totals["readings"] + totals["dead_letters"] == rows_in
    assert (totals["readings"], totals["dead_letters"]) == (200, 5)
    reasons = sorted(d["reason"] for d in got["dead_letters"])
    assert reasons == [
        "field 'humidity' is a string ('x'), not a number",
        "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "payload has no 'fields' list of names",
        "row has 3 values but 'fields' names 4",
        "sensor_index is null, not an integer",
    ]
    assert {d["origin"] for d in got["dead_letters"]} >= {"p.jsonl:2", "p.jsonl:3#row0"}


def test_testing_source_of_readings_and_dead_letters():
    items = [Reading(9, 1000 + 120 * i, {"pm2.5_cf_1": 3.0 + i % 2}) for i in range(80)]
    items[75].values["pm2.5_cf_1"] = 1000.0  # the default detector scores PM2.5
    items.insert(10, DeadLetter("because", [1, 2], "test"))
    got = run_flow(TestingSource(items, batch_size=7))
    assert [r["time"] for r in got["output"]] == ["1970-01-01T02:46:40Z"]
    assert got["output"][0]["pm2.5_cf_1"] == 1000.0
    assert got["dead_letters"] == [{"reason": "because", "origin": "test", "raw": [1, 2]}]


def test_global_mode_on_the_real_snapshot(snapshot_path):
    want = reference_anomalies(snapshot_path, key="global")
    one = run_flow(str(snapshot_path), key="global", **NO_QC)
    two = run_flow(str(snapshot_path), workers=2, key="global", **NO_QC)
    assert as_set(one["output"]) == as_set(two["output"]) == want
    [totals] = one["totals"]
    rows = len(json.loads(snapshot_path.read_text())["data"])
    assert rows == 25_552
    assert totals["readings"] + totals.get("dead_letters", 0) == rows
    assert totals["status:warming_up"] == 72
    assert totals["imputed:humidity"] + totals.get("missing:humidity", 0) == 965


@pytest.mark.parametrize("key", ["sensor", "global"])
def test_two_processes_give_the_same_anomalies_as_one_worker(polls_file, tmp_path, key):
    out = tmp_path / "anomalies.jsonl"
    run_processes(
        f"dataflows.air_quality:build_flow({str(polls_file)!r}, key={key!r}, output={str(out)!r}, "
        "detector='hst')"
    )
    lines = out.read_text().splitlines()
    assert as_set(json.loads(line) for line in lines) == as_set(
        run_flow(str(polls_file), key=key, **HST)["output"]
    )
    assert len(lines) == len(set(lines)) >= 4
