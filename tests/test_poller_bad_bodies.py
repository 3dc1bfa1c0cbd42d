"""No body stops the poller: every line of the bad-input corpus served as an API answer, and bodies
cut off in transfer or that do not decompress, against the fake PurpleAir API; then a flow
polling such an API, killed with SIGKILL part-way and resumed, loses no reading.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from bytewax.testing import TestingSink, run_main

from core.json_lines import to_line
from core.readings import DeadLetter, Reading
from data import simulate
from dataflows.air_quality import build_flow
from sources.payload import EPOCH_RANGE
from sources.poller import API_KEY_ENV, MAX_STAMP_AHEAD
from tests.conftest import ROOT
from tests.corpus import NEW_SENSOR, NOT_JSON, READING, doc, dumps, good_row, kinds
from tests.fake_purpleair import API_KEY, FakePurpleAir
from tests.test_poller import Clock, as_tuples, drive, expected_readings, poller
from tests.test_recovery import commit_epoch


def body_wants(kind) -> list[str]:
    """What a corpus line gives as a whole API answer: a blank body is not JSON (a blank line
    of a file is no record, but an answer must be a document)."""
    if not kind.line.strip():
        return [NOT_JSON]
    return [w for w in kind.want if w != READING]


def bad_faults(first: int, every: int, corpus, transfer: bool = True) -> dict[int, tuple]:
    """Each corpus line as a body, at request numbers first, first + every, ...; a cut-off and an
    undecodable transfer after every 20th."""
    faults: dict[int, tuple] = {}
    n = first
    for i, kind in enumerate(corpus):
        faults[n] = ("body", kind.line)
        n += every
        if transfer and i % 20 == 19:
            faults[n], faults[n + every] = ("short",), ("gzip",)
            n += 2 * every
    return faults


@pytest.fixture(scope="module")
def polls():
    return simulate.generate(seed=3, n_sensors=5, hours=0.2).polls


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)


def test_every_corpus_body_is_dead_letters_or_readings_and_no_poll_is_lost(polls):
    corpus = kinds()
    faults = bad_faults(1, 1, corpus)
    clock = Clock()
    with FakePurpleAir(polls, faults) as server:
        answered = len(polls) + len(corpus) + 1
        part = poller(server, clock, max_polls=answered).build_part("read", "p", None)
        steps = drive(part, clock, limit=len(faults) + len(polls) + 10)
    items = [item for _, batch in steps for item in batch]
    sim = [i for i in items if isinstance(i, Reading) and i.sensor_index < NEW_SENSOR]
    assert as_tuples(sim) == expected_readings(polls)  # every poll, once, in order
    new = [i for i in items if isinstance(i, Reading) and i.sensor_index >= NEW_SENSOR]
    assert len(new) == sum(k.want.count(READING) for k in corpus)
    reasons = [i.reason for i in items if isinstance(i, DeadLetter)]
    wanted = [w for kind in corpus for w in body_wants(kind)]
    assert len(reasons) == len(wanted)
    for reason, want in zip(reasons, wanted, strict=True):
        assert reason.startswith(want), (reason, want)
    stamps = [p["data_time_stamp"] for p in polls]
    since = [int(r["query"]["modified_since"]) for r in server.requests[1:]]
    assert set(since) <= set(stamps) and since == sorted(since)  # never a bad body's stamp
    transfer = [n for n, f in faults.items() if f[0] in ("short", "gzip")]
    assert len(transfer) == 10
    waits = {n: steps[n + 1][0] for n in transfer}  # the request after each is a retry
    assert all(0 < w < 120 for w in waits.values()) and all(steps[n][1] == [] for n in transfer)


@pytest.mark.parametrize("ahead", [MAX_STAMP_AHEAD + 1, EPOCH_RANGE[1]])
def test_a_stamp_in_the_future_is_not_taken_and_hides_no_later_poll(polls, ahead):
    """A sound body (its row is a reading) whose data_time_stamp is further ahead of the clock
    than MAX_STAMP_AHEAD (by a second, or year 9999): the next polls still ask from the last
    true stamp, and every later recorded poll comes through."""
    clock = Clock()
    stamp = ahead if ahead == EPOCH_RANGE[1] else int(clock.now.timestamp()) + 240 + ahead
    future = dumps(doc([good_row()], data_time_stamp=stamp))
    with FakePurpleAir(polls, {2: ("body", future)}) as server:
        part = poller(server, clock, max_polls=len(polls) + 1).build_part("read", "p", None)
        items = [item for _, batch in drive(part, clock) for item in batch]
    assert as_tuples(i for i in items if i.sensor_index < NEW_SENSOR) == expected_readings(polls)
    assert [i.sensor_index for i in items if i.sensor_index >= NEW_SENSOR] == [NEW_SENSOR]
    since = [r["query"].get("modified_since") for r in server.requests]
    assert str(stamp) not in since and since[3] == since[2] == str(polls[1]["data_time_stamp"])


def start_polling_flow(base_url, max_polls, output, db, log) -> subprocess.Popen:
    options = {"base_url": base_url, "interval": 0.01, "max_polls": max_polls, "timeout": (2, 5)}
    options["backoff"] = {"base": 0.01, "cap": 0.05}
    dead = output.with_suffix(".dead.jsonl")
    target = (
        f"dataflows.air_quality:build_flow('purpleair', purpleair={options!r}, "
        f"readings={str(output)!r}, output='/dev/null', dead_letters={str(dead)!r}, "
        "events='/dev/null')"
    )
    command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "1", "-b", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), API_KEY_ENV: API_KEY}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def simulated(path):
    """The readings written to `path` of the simulated sensors (not the corpus's own)."""
    return [line for line in lines(path) if json.loads(line)["sensor_index"] < NEW_SENSOR]


def test_a_polling_flow_killed_part_way_resumes_past_bad_bodies_losing_no_reading(tmp_path):
    sim = simulate.generate(seed=5, n_sensors=8, hours=12)
    path, _ = simulate.write(sim, tmp_path)
    whole = []  # every cleaned reading of an uninterrupted run on the file of the same polls
    sinks = {"output": TestingSink([]), "events": TestingSink([]), "readings": TestingSink(whole)}
    run_main(build_flow(str(path), **sinks))
    want = {to_line(r) for r in whole}
    corpus = [k for k in kinds() if len(k.line) < 100_000] * 2
    faults = bad_faults(3, 3, corpus, transfer=False)
    max_polls = len(sim.polls) + len(faults) + 5
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    db = tmp_path / "recovery"
    db.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(db), "1"], check=True)
    with FakePurpleAir(sim.polls, faults) as server:
        with (tmp_path / "run1.log").open("w") as log:
            proc = start_polling_flow(server.base_url, max_polls, before, db, log)
            for _ in range(1200):  # at most 60 s: readings out and a snapshot committed
                if proc.poll() is not None or (lines(before) and commit_epoch(db) >= 2):
                    break
                time.sleep(0.05)
            assert proc.poll() is None, "the flow finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        for _ in range(50):  # at most 5 s: a request sent just before the kill is counted too
            counted = len(server.requests)
            time.sleep(0.1)
            if len(server.requests) == counted:
                break
        resumed_from = len(server.requests)
        with (tmp_path / "run2.log").open("w") as log:
            proc = start_polling_flow(server.base_url, max_polls, after, db, log)
            assert proc.wait(timeout=240) == 0, (tmp_path / "run2.log").read_text()[-3000:]
        served = len(server.requests)  # the resumed run polls `max_polls` times afresh
    first, second = simulated(before), simulated(after)
    print(
        f"\npoller recovery: {len(want)} readings uninterrupted; {len(first)} before the kill, "
        f"{len(second)} after; {len(faults)} bad bodies, {resumed_from} requests before the kill"
    )
    assert set(first) | set(second) == want  # no reading lost, each cleaned and scored the same
    assert 0 < len(first) < len(want) and 0 < len(second) < len(want)
    served_after = [f for n, f in sorted(faults.items()) if resumed_from <= n < served]
    assert served_after, "the resumed run met no bad body"
    by_line = {k.line: k for k in corpus}
    wanted = [w for f in served_after for w in body_wants(by_line[f[1]])]
    reasons = [json.loads(d)["reason"] for d in lines(after.with_suffix(".dead.jsonl"))]
    assert len(reasons) == len(wanted)
    for reason, w in zip(reasons, wanted, strict=True):
        assert reason.startswith(w), (reason, w)
