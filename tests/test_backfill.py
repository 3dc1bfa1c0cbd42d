"""`python -m dataflows.backfill` end to end on small histories: JSON lines of polls and the same
readings as a CSV give the anomalies the per-sensor classes make of the polls (the oracle,
`tests/reference_flow.py`), on 1 and 2 workers; bad rows become dead letters (rows in =
readings + dead letters); progress lines on stderr; a configuration error is one line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from bytewax.testing import run_main

from dataflows.air_quality import build_flow
from dataflows.backfill import BackfillProgress, main
from tests.conftest import ROOT
from tests.reference_flow import reference_run

SHIPPED = ROOT / "data" / "polls.jsonl"


@pytest.fixture(scope="module")
def polls(tmp_path_factory) -> Path:
    """The shipped polls' first 10 hours (300 polls of 60 sensors)."""
    path = tmp_path_factory.mktemp("history") / "polls.jsonl"
    path.write_bytes(b"".join(SHIPPED.read_bytes().splitlines(keepends=True)[:300]))
    return path


def as_csv(polls: Path, out: Path) -> int:
    """The polls' rows as a CSV of readings (time: last_seen, as ISO 8601 every other row);
    returns the rows written."""
    n = 0
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        for k, line in enumerate(polls.read_text().splitlines()):
            payload = json.loads(line)
            fields = payload["fields"]
            if k == 0:
                writer.writerow(["sensor_index", "time", *fields[2:]])
            for row in payload["data"]:
                cells = ["" if v is None else repr(v) for v in row]
                if n % 2:
                    from datetime import UTC, datetime

                    cells[1] = datetime.fromtimestamp(row[1], UTC).isoformat()
                writer.writerow(cells)
                n += 1
    return n


def lines(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines()) if path.exists() else []


def records(texts: list[str]) -> list[str]:
    """JSON lines as sorted canonical text (keys sorted), to compare what they hold."""
    return sorted(json.dumps(json.loads(text), sort_keys=True) for text in texts)


@pytest.fixture(scope="module")
def oracle(polls) -> list[str]:
    """The anomalies the per-sensor classes make of the polls (`tests.reference_flow`)."""
    made = reference_run(polls, ["output", "dead_letters"], progress=None)
    assert not made["dead_letters"]
    return sorted(json.dumps(record, sort_keys=True) for record in made["output"])


def backfill(path: Path, tmp_path: Path, capsys, *extra: str) -> tuple[list[str], list[str]]:
    out = tmp_path / "anomalies.jsonl"
    code = main(
        [str(path), "--output", str(out), "--events", str(tmp_path / "events.jsonl"), *extra]
    )
    assert code == 0
    return lines(out), capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_polls_give_the_per_sensor_classes_anomalies(polls, oracle, tmp_path, capsys, workers):
    got, err = backfill(polls, tmp_path, capsys, "--workers", workers, "--progress", "0")
    assert records(got) == oracle and len(oracle) > 10
    progress = [line for line in err if line.startswith("backfill: ")]
    assert len(progress) > 3
    rows = sum(len(json.loads(line)["data"]) for line in polls.read_text().splitlines())
    assert progress[-1].startswith(f"backfill: done, {rows:,} rows in ")
    assert "100.0% of" in progress[-2] and "0:00:00 left" in progress[-2]


def test_a_csv_of_the_same_readings_gives_the_same_anomalies(polls, oracle, tmp_path, capsys):
    path = tmp_path / "readings.csv"
    rows = as_csv(polls, path)
    got, err = backfill(path, tmp_path, capsys, "--progress", "0.001")
    assert records(got) == oracle
    assert err[-1].startswith(f"backfill: done, {rows:,} rows in ")


def test_the_flow_reads_a_csv_of_readings_as_its_source(polls, oracle, tmp_path):
    """`build_flow("readings.csv")` (and so `air-quality run`) reads the CSV in column batches,
    as the back-fill does."""
    path = tmp_path / "readings.csv"
    as_csv(polls, path)
    out = tmp_path / "anomalies.jsonl"
    run_main(build_flow(str(path), output=str(out), events="/dev/null", progress=None))
    assert records(lines(out)) == oracle


def test_bad_rows_are_dead_letters_and_counts_add_up(polls, tmp_path, capsys):
    path = tmp_path / "readings.csv"
    rows = as_csv(polls, path)
    text = path.read_bytes().splitlines(keepends=True)
    bad = [b"x,1775001600,1,2,3,4,5,6,7,8,9\n", b"5,soon,1,2,3,4,5,6,7,8,9\n", b"\xff\xfe\n"]
    text[5:5] = bad
    text[50:50] = [b"5,1775001600,1,2\n"]
    path.write_bytes(b"".join(text))
    dead, readings = tmp_path / "dead.jsonl", tmp_path / "readings.jsonl"
    got, err = backfill(
        path, tmp_path, capsys, "--dead-letters", str(dead), "--readings", str(readings)
    )
    reasons = [json.loads(line)["reason"] for line in lines(dead)]
    assert sorted(reasons) == sorted(
        [
            "sensor_index 'x' is not an index (0 to 2**63 - 1)",
            "time 'soon' is not a time (epoch seconds or ISO 8601, years 1–9999)",
            "not UTF-8: byte 0xff at 0",
            "row has 4 cells but the header names 11",
        ]
    )
    assert len(lines(readings)) + len(reasons) == rows + 4
    assert err[-1].startswith(f"backfill: done, {rows + 4:,} rows in ")


def test_configuration_errors_are_one_line(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dataflows.backfill", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    missing = run(str(tmp_path / "nothing.jsonl"))
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"configuration error: no such file: {tmp_path / 'nothing.jsonl'}"
    )
    header = tmp_path / "bad.csv"
    header.write_text("sensor,time\n1,2\n")
    bad = run(str(header))
    assert bad.returncode == 1
    problem = "the header has no 'sensor_index' column: ['sensor', 'time']"
    assert bad.stderr.strip().splitlines() == [f"configuration error: {header}: {problem}"]
    toml = tmp_path / "flow.toml"
    toml.write_text("[detection]\ndetector = 'nope'\n")
    wrong = run(str(SHIPPED), "--config", str(toml))
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert wrong.stderr.startswith(f"configuration error: {toml}: [detection] detector: 'nope'")


def test_progress_line_from_offsets_and_rows():
    """Two shards in one process: the share read is the one furthest behind."""
    clock = iter([0.0, 1.0, 1.5, 3.0, 4.0]).__next__
    out: list[str] = []
    p = BackfillProgress(2_000_000, 1.0, clock=clock, write=out.append)
    p("shard-0-of-2", 1000, 1_000_000)  # t=1: a line
    p("shard-1-of-2", 1000, 500_000)  # t=1.5: too soon
    p("shard-1-of-2", 1000, 1_000_000)  # t=3: a line
    assert out == [
        "backfill: 1,000 rows, 1,000 rows/s, 50.0% of 2.0 MB, 0:00:01 left",
        "backfill: 3,000 rows, 1,000 rows/s, 50.0% of 2.0 MB, 0:00:03 left",
    ]
    assert p.finish() == "backfill: done, 3,000 rows in 0:00:04, 750 rows/s"


def test_the_csv_knows_the_same_sensors_by_area_as_the_polls(polls, tmp_path):
    """The area stage's registry: a CSV of the polls' readings gives the polls' own."""
    from columns.csv_source import CsvColumnSource
    from preparation.registry import file_registry

    path = tmp_path / "readings.csv"
    as_csv(polls, path)
    registry = CsvColumnSource(path).registry(30.0, 10.0)
    assert registry == file_registry(polls, 30.0, 10.0) and len(registry) > 3
