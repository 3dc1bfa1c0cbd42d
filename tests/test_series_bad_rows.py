"""No row stops the series flow: each bad row is a dead letter with its reason, the rows around it
are scored as if it were absent, rows in = rows scored + dead letters, and a run killed with
SIGKILL part-way over a CSV full of bad rows resumes to the uninterrupted run's output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bytewax.testing import TestingSink, cluster_main, run_main

from core.json_lines import to_line
from dataflows.series import MAX_LINE_BYTES, build_flow
from tests.conftest import ROOT
from tests.test_recovery import commit_epoch
from tests.test_series_flow import read_csv

HEADER = b"timestamp,value,key"
START = 1775001600
#: (kind, line, how its dead letter's reason starts); None: a blank line, not a row.
BAD_ROWS = [
    ("row too short", b"1775001600", "row has 1 cells but the header names 3"),
    ("row too long", b"1775001600,1.0,a,extra", "row has 4 cells but the header names 3"),
    ("key column missing", b"1775001600,1.0", "row has 2 cells but the header names 3"),
    ("value is text", b"1775001600,abc,a", "value 'abc' is not a number"),
    ("value 1e999", b"1775001600,1e999,b", "value '1e999' is not a finite number"),
    ("value -inf", b"1775001600,-inf,a", "value '-inf' is not a finite number"),
    ("value Infinity", b"1775001600,Infinity,b", "value 'Infinity' is not a finite number"),
    ("value with a comma decimal", b'1775001600,"1,5",a', "value '1,5' is not a number"),
    ("value with _ separators", b"1775001600,1_000,a", "value '1_000' is not a number"),
    ("value in Arabic-Indic digits", "1775001600,١٢,b".encode(), "value '١٢' is not a number"),
    ("value in fullwidth digits", "1775001600,１,a".encode(), "value '１' is not a number"),
    ("value with a BOM", "1775001600,\ufeff1.0,b".encode(), "value '\\ufeff1.0' is not a number"),
    ("NUL byte in the value", b"1775001600,1\x00,a", "value '1\\x00' is not a number"),
    ("timestamp is text", b"yesterday,1.0,a", "timestamp 'yesterday' is not a time"),
    ("timestamp is empty", b",1.0,b", "timestamp '' is not a time"),
    ("timestamp with _ separators", b"1_775_001_600,1.0,b", "timestamp '1_775_001_600' is not"),
    ("timestamp in Arabic-Indic digits", "١٧٧٥,1.0,a".encode(), "timestamp '١٧٧٥' is not a time"),
    ("timestamp is inf", b"inf,1.0,a", "timestamp 'inf' is not a time"),
    ("timestamp month 13", b"2026-13-01T00:00:00,1.0,b", "timestamp '2026-13-01T00:00:00' is not"),
    ("undecodable byte in the value", b"1775001600,1.\xff,a", "not UTF-8: byte 0xff at 13"),
    ("undecodable byte in the key", b"1775001600,1.0,\xe9", "not UTF-8: byte 0xe9 at 15"),
    ("UTF-16 line", "1775001600,1.0,a".encode("utf-16"), "not UTF-8: byte 0xff at 0"),
    ("NUL bytes only", b"\x00\x00", "row has 1 cells"),
    ("unclosed quote", b'1775001600,"1.0,a', "not a CSV row: unexpected end of data"),
    ("text after a closing quote", b'1775001600,"1"x,a', "not a CSV row: ',' expected after '\"'"),
    ("only commas", b",,", "timestamp '' is not a time"),
    ("tab-separated", b"1775001600\t1.0\ta", "row has 1 cells"),
    ("HTML error page", b"<html><body>502 Bad Gateway</body></html>", "row has 1 cells"),
    ("2 MB line", b"9" * 2_000_000, f"line of 2000001 bytes, longer than {MAX_LINE_BYTES}"),
    ("blank line", b"", None),
    ("spaces", b"   ", None),
]


def good_rows(n: int = 300, seed: int = 5) -> list[bytes]:
    """Two interleaved keys, a random walk each, some missing values, a spike in each."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, level in (("a", 20.0), ("b", 500.0)):
        x = level + np.cumsum(rng.normal(0, 0.5, n))
        x[n // 2] += 40 * (level / 20) ** 0.5
        for i, v in enumerate(x):
            value = "" if i % 29 == 3 else f"{v:.3f}"
            rows.append((i, f"{START + 60 * i},{value},{key}".encode()))
    rows.sort()  # by time, a then b
    return [row for _, row in rows]


def write(path: Path, rows: list[bytes], line_end: bytes = b"\n") -> Path:
    path.write_bytes(HEADER + b"\n" + b"".join(row + line_end for row in rows))
    return path


def with_bad_rows(
    good: list[bytes], every: int = 13, kinds: list[tuple] = BAD_ROWS
) -> tuple[list[bytes], dict]:
    """`good` with one of `kinds` after every `every` rows (the rest at the end); {line number:
    kind} (the header is line 1)."""
    bad = iter(kinds)
    out, at = [], {}
    for n, row in enumerate(good, start=1):
        out.append(row)
        if n % every == 0 and (kind := next(bad, None)) is not None:
            out.append(kind[1])
            at[len(out) + 1] = kind
    for kind in bad:
        out.append(kind[1])
        at[len(out) + 1] = kind
    return out, at


def per_key(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    keyed: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        keyed.setdefault(r["key"], []).append(r)
    return keyed


def run(src: Path, out: Path, workers: int, **options) -> tuple[list[dict[str, str]], dict]:
    totals: list[dict] = []
    flow = build_flow(src, out, totals=TestingSink(totals), **options)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    [counts] = totals
    return read_csv(out)[1], counts


@pytest.mark.parametrize(("workers", "shards"), [(1, 1), (1, 2), (2, 2)])
def test_bad_rows_are_dead_letters_and_the_rest_is_scored_as_without_them(
    tmp_path, workers, shards
):
    good = good_rows()
    rows, at = with_bad_rows(good)
    assert len(at) == len(BAD_ROWS)
    clean_out, clean_totals = run(write(tmp_path / "good.csv", good), tmp_path / "g.csv", 1)
    dead_path = tmp_path / "dead.jsonl"
    bad_out, totals = run(
        write(tmp_path / "bad.csv", rows), tmp_path / "b.csv", workers,
        shards=shards, dead_letters=str(dead_path),
    )  # fmt: skip
    assert per_key(bad_out) == per_key(clean_out)
    assert b"\r" not in (tmp_path / "b.csv").read_bytes()  # every line ends as the header does
    assert sum(r["is_anomaly"] == "true" for r in bad_out) >= 2  # the spikes, at least
    letters = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert all(set(d) == {"reason", "origin", "raw"} for d in letters)
    got = {int(d["origin"].removeprefix("bad.csv:")): d["reason"] for d in letters}
    assert len(got) == len(letters)  # one dead letter per bad row
    want = {n: kind for n, kind in at.items() if kind[2] is not None}
    assert set(got) == set(want)
    for n, (name, _line, reason) in want.items():
        assert got[n].startswith(reason), (name, got[n])
    data_lines = [ln for ln in (tmp_path / "bad.csv").read_bytes().splitlines()[1:] if ln.strip()]
    assert totals["rows_in"] == totals["scored"] + totals["dead_letters"] == len(data_lines)
    assert (totals["scored"], totals["dead_letters"]) == (len(good), len(want))
    assert totals["anomalies"] == clean_totals["anomalies"] >= 2


def test_the_raw_of_a_bad_row_is_written_and_bounded(tmp_path):
    rows, at = with_bad_rows(good_rows(40), every=1)
    dead: list[dict] = []
    run(write(tmp_path / "bad.csv", rows), tmp_path / "b.csv", 1, dead_letters=TestingSink(dead))
    raws = {
        kind[0]: d["raw"] for d in dead for n, kind in at.items() if d["origin"].endswith(f":{n}")
    }
    assert raws["undecodable byte in the value"] == "1775001600,1.\\xff,a"
    assert raws["2 MB line"] == {"prefix": "9" * 4096, "bytes": 2_000_001}
    assert raws["NUL byte in the value"] == "1775001600,1\x00,a"


def test_crlf_lines_and_quoted_cells_are_rows(tmp_path):
    good = good_rows(60)
    plain, _ = run(write(tmp_path / "a.csv", good), tmp_path / "a_out.csv", 1)
    quoted = [row.replace(b",a", b',"a"') for row in good]
    crlf, totals = run(write(tmp_path / "b.csv", quoted, b"\r\n"), tmp_path / "b_out.csv", 1)
    assert crlf == plain and totals["dead_letters"] == 0


def start_series(src: Path, out: Path, dead: Path, db: Path, log) -> subprocess.Popen:
    target = f"dataflows.series:build_flow({str(src)!r}, {str(out)!r}, dead_letters={str(dead)!r})"
    command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "1", "-b", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_a_series_run_killed_part_way_resumes_past_bad_rows_to_the_same_output(tmp_path):
    want_out = tmp_path / "whole.csv"
    for n in (60_000, 180_000, 540_000):  # a longer file when the flow outran the kill
        kinds = [k for k in BAD_ROWS if k[0] != "2 MB line"] * (n // 1000)
        rows, at = with_bad_rows(good_rows(n), every=97, kinds=kinds)
        src = write(tmp_path / "bad.csv", rows)
        db = tmp_path / f"recovery{n}"
        db.mkdir()
        subprocess.run([sys.executable, "-m", "bytewax.recovery", str(db), "1"], check=True)
        out, dead = tmp_path / "out.csv", tmp_path / "dead.jsonl"
        dead.unlink(missing_ok=True)
        with (tmp_path / "run1.log").open("w") as log:
            proc = start_series(src, out, dead, db, log)
            for _ in range(1200):  # at most 60 s: rows out and a snapshot committed
                if proc.poll() is not None:
                    break
                if out.exists() and out.stat().st_size > 1000 and commit_epoch(db) >= 1:
                    break
                time.sleep(0.05)
            killed = proc.poll() is None
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        rows_before = len(out.read_bytes().splitlines())
        if killed and rows_before < 2 * n + 1:  # killed before it wrote every row
            break
    else:
        pytest.fail("the flow finished before it could be killed, even on the longest file")
    dead_before = dead.read_text().splitlines()
    with (tmp_path / "run2.log").open("w") as log:
        proc = start_series(src, out, dead, db, log)
        assert proc.wait(timeout=240) == 0, (tmp_path / "run2.log").read_text()[-3000:]
    whole_dead: list[dict] = []
    run_main(build_flow(src, want_out, dead_letters=TestingSink(whole_dead)))
    print(
        f"\nseries recovery: {len(rows) + 1} lines, {len(whole_dead)} bad rows; killed with "
        f"{rows_before} CSV lines and {len(dead_before)} dead letters written"
    )
    assert 1 < rows_before < len(want_out.read_bytes().splitlines())
    assert out.read_bytes() == want_out.read_bytes()  # the CSV resumes exactly
    letters = dead.read_text().splitlines()
    assert {to_line(d) for d in whole_dead} == set(letters)
    assert len(whole_dead) == sum(1 for kind in at.values() if kind[2] is not None)
    assert len(dead_before) < len(letters)
    assert "totals: anomalies=" in (tmp_path / "run2.log").read_text()
