"""Recovery: sensor shards that resume from any snapshot, and a flow killed with SIGKILL part-way
that, resumed, gives the anomalies and dead letters of an uninterrupted run, passing the poison
lines (lines that once stopped the flow) in its file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from bytewax.testing import TestingSink, run_main

from core.json_lines import to_line
from core.readings import Reading
from data import simulate
from dataflows.air_quality import build_flow
from sources.purpleair import read_items, sensor_owner
from sources.shards import Position, ShardedFileSource
from tests.conftest import ROOT, payload, write_lines
from tests.corpus import kinds, write_mixed

#: Corpus kinds that stopped the flow before they became dead letters (issue 11).
POISON = ("NaN", "1e999", "-Infinity", "100,000 open brackets", "a value nested 5,000 deep")


def polls(n_polls=8, sensors=(3, 10, 11, 25, 40, 41, 99, 123)):
    return [
        payload([[s, 1000 + 120 * t, 50.0, float(s + t)] for s in sensors], stamp=1000 + 120 * t)
        for t in range(n_polls)
    ]


def drain(part):
    """All batches of a partition, each with the snapshot taken right after it."""
    out = []
    while True:
        try:
            batch = part.next_batch()
        except StopIteration:
            return out
        out.append((batch, part.snapshot()))


def shard_items(source, resume=None):
    return {
        p: drain(source.build_part("read", p, (resume or {}).get(p))) for p in source.list_parts()
    }


@pytest.fixture
def mixed_file(tmp_path):
    docs = polls()
    docs[3]["data"].append([7, 1, "bad", 1.0])
    return write_lines(tmp_path / "p.jsonl", [docs[0], "not json", "", *docs[1:]])


@pytest.mark.parametrize("shards", [1, 2, 3, 8])
def test_shards_give_every_row_once_each_sensor_in_one_shard_in_order(mixed_file, shards):
    source = ShardedFileSource(mixed_file, shards=shards, batch_size=5)
    by_shard = {p: [i for b, _ in batches for i in b] for p, batches in shard_items(source).items()}
    whole = list(read_items(str(mixed_file)))
    assert Counter(map(repr, whole)) == Counter(repr(i) for s in by_shard.values() for i in s)
    owner = {}
    for part, items in by_shard.items():
        last = {}
        for r in (i for i in items if isinstance(i, Reading)):
            assert owner.setdefault(r.sensor_index, part) == part
            assert r.time > last.get(r.sensor_index, 0)
            last[r.sensor_index] = r.time
    if shards == 1:  # global mode: file order exactly
        assert list(map(repr, by_shard["shard-0-of-1"])) == list(map(repr, whole))


@pytest.mark.parametrize("single_document", [False, True])
def test_a_shard_resumes_exactly_after_any_snapshot(tmp_path, mixed_file, single_document):
    if single_document:
        path = tmp_path / "one.json"
        path.write_text(json.dumps(polls(1, sensors=tuple(range(40)))[0], indent=1))
    else:
        path = mixed_file
    source = ShardedFileSource(path, shards=2, batch_size=3)
    for part, batches in shard_items(source).items():
        assert len(batches) > 3
        items = [repr(i) for b, _ in batches for i in b]
        done = 0
        for batch, snap in batches:
            done += len(batch)
            assert isinstance(snap, Position)
            rest = drain(source.build_part("read", part, snap))
            assert [repr(i) for b, _ in rest for i in b] == items[done:]


def commit_epoch(db: Path) -> int:
    """The latest epoch whose snapshots are committed in the recovery partition (0: none)."""
    try:
        with sqlite3.connect(f"file:{db / 'part-0.sqlite3'}?mode=ro", uri=True, timeout=1) as c:
            row = c.execute("SELECT max(commit_epoch) FROM commits").fetchone()
    except sqlite3.OperationalError:
        return 0
    return row[0] or 0


def run_flow(polls_path, output, db, log):
    dead = output.with_suffix(".dead.jsonl")
    target = (
        f"dataflows.air_quality:build_flow({str(polls_path)!r}, output={str(output)!r}, "
        f"dead_letters={str(dead)!r}, events='/dev/null', progress=1.0)"
    )
    command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "1", "-b", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def kill_part_way(polls_path, before, db, log) -> bool:
    """Start the flow, SIGKILL it once anomalies are out and a snapshot taken after them is
    committed (two epochs later); False when it finished first (the caller tries a longer file)."""
    proc = run_flow(polls_path, before, db, log)
    try:
        seen_at = None  # the commit epoch when the first anomalies were seen
        for _ in range(1200):  # at most 60 s
            if proc.poll() is not None:
                break
            if seen_at is None and lines(before):
                seen_at = commit_epoch(db)
            if seen_at is not None and commit_epoch(db) >= max(seen_at + 2, 1):
                break
            time.sleep(0.05)
        time.sleep(0.3)  # then kill it in the middle of an epoch (1 s)
        if proc.poll() is not None:
            return False
        os.kill(proc.pid, signal.SIGKILL)
        return True
    finally:
        proc.kill()
        proc.wait(timeout=60)


def with_poison(polls_path: Path) -> tuple[Path, int]:
    """The file with a poison line after every 3rd line, the last line one too: the corpus kinds
    that once stopped the flow (non-finite numbers in a dead letter's raw, nesting too deep for
    json). Returns the file and its number of lines."""
    poison = [k for k in kinds() if k.name in POISON]
    assert len(poison) == len(POISON)
    path = polls_path.with_name("poisoned.jsonl")
    n_lines = len(polls_path.read_bytes().splitlines())
    at = write_mixed(path, poison * (n_lines // 3 // len(POISON) + 1), polls_path, every=3)
    assert max(at) == len(at) + n_lines
    return path, max(at)


def test_a_flow_killed_part_way_resumes_with_the_same_anomalies(tmp_path):
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    for n_sensors in (200, 600, 1800):  # a longer file when the flow outran the kill
        run_dir = tmp_path / f"n{n_sensors}"
        run_dir.mkdir()
        sim = simulate.generate(seed=21, n_sensors=n_sensors, hours=12)
        polls_path, last_line = with_poison(simulate.write(sim, run_dir)[0])
        db = run_dir / "recovery"
        db.mkdir()
        init = [sys.executable, "-m", "bytewax.recovery", str(db), "1"]
        subprocess.run(init, check=True, cwd=ROOT)
        before.unlink(missing_ok=True)
        before.with_suffix(".dead.jsonl").unlink(missing_ok=True)
        with (tmp_path / "run1.log").open("w") as log:
            if kill_part_way(polls_path, before, db, log):
                break
    else:
        pytest.fail("the flow finished before it could be killed, even on the longest file")
    killed_at = commit_epoch(db)

    with (tmp_path / "run2.log").open("w") as log:
        proc = run_flow(polls_path, after, db, log)
        assert proc.wait(timeout=240) == 0, (tmp_path / "run2.log").read_text()[-3000:]

    whole, whole_dead = [], []
    sinks = {"output": TestingSink(whole), "dead_letters": TestingSink(whole_dead)}
    run_main(build_flow(str(polls_path), **sinks, events=TestingSink([])))
    want = [to_line(record) for record in whole]
    dead_before, dead_after = (
        lines(before.with_suffix(".dead.jsonl")),
        lines(after.with_suffix(".dead.jsonl")),
    )
    print(
        f"\nrecovery: {len(whole_dead)} dead letters from the poison lines; {len(dead_before)} "
        f"written before the kill, {len(dead_after)} after the resume"
    )
    assert len(whole_dead) > 100
    assert set(dead_before) | set(dead_after) == {to_line(d) for d in whole_dead}  # none lost
    assert len(dead_after) < len(whole_dead)
    if lines(after):  # the resumed run read on from its snapshot, to the end: past the poison
        origins = {json.loads(d)["origin"].split("#")[0] for d in dead_after}
        assert f"poisoned.jsonl:{last_line}" in origins
    first, second = lines(before), lines(after)
    repeats = sorted(set(first) & set(second))
    print(
        f"\nrecovery: uninterrupted {len(want)} anomalies; killed after commit epoch {killed_at} "
        f"with {len(first)} written; resumed run wrote {len(second)}; repeats {len(repeats)}"
    )
    assert len(set(want)) == len(want) > 100
    assert len(set(first)) == len(first) and len(set(second)) == len(second)
    assert set(first) | set(second) == set(want)
    assert 0 < len(first) < len(want) and len(second) < len(want)  # it resumed, not restarted
    assert len(repeats) == len(first) + len(second) - len(want)
    assert "totals: anomalies=" in (tmp_path / "run2.log").read_text()
    with sqlite3.connect(db / "part-0.sqlite3") as c:
        sizes = dict(
            c.execute("SELECT step_id, max(length(ser_change)) FROM snaps GROUP BY step_id")
        )
    print(f"recovery: largest snapshot per step (bytes): {sizes}")
    # a shard's snapshot holds its sensors' state: bounded per sensor
    sensors = {row[0] for poll in sim.polls for row in poll["data"]}
    per_shard = max(sum(map(sensor_owner(i, 2), sensors)) for i in range(2))
    largest = max(size for step, size in sizes.items() if "clean_and_score" in step)
    assert largest < 16_000 * per_shard
