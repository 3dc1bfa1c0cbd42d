"""The PurpleAir history back-fill against a fake PurpleAir on 127.0.0.1 (`tests/fake_history.py`,
which keeps its own span limits and points table): chunks within the span limit, in time order
per sensor; the same outputs as the same data read from a file (real data, a week of 11 sensors);
points counted as the server charges them; 429/5xx/bad bodies retried, 402 and 403 one line
each; the budget; the dry run's figures; a resumed window skips exactly what was emitted; and a
back-fill killed with SIGKILL and resumed holds the uninterrupted run's rows in a database."""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from bytewax.testing import TestingSink, run_main

from config.options import configuration_error
from dataflows.air_quality import build_flow
from dataflows.backfill import main
from sources.history import HistoryPlan, HistoryPosition, HistorySource
from sources.points import Budget, BudgetExceeded, PointsLedger
from sources.retry import Backoff
from tests.conftest import ROOT
from tests.databases import OUTPUTS, expected, fetch, matches
from tests.fake_history import API_KEY, DAY, SPAN_DAYS, FakeHistory, history_from_polls
from tests.test_database_recovery import recovery_dir
from tests.test_recovery import commit_epoch

AJL = ROOT.parent / "shared" / "data" / "purpleair-ajl" / "ajl-dev.jsonl.gz"
FIELDS = [
    "humidity",
    "temperature",
    "pressure",
    "pm2.5_cf_1",
    "pm2.5_cf_1_a",
    "pm2.5_cf_1_b",
    "pm2.5_atm",
    "pm2.5_atm_a",
    "pm2.5_atm_b",
]
FAST = Backoff(base=0.01, cap=0.05)
T0 = 1_700_000_400  # a 10-minute boundary
OUT = ("output", "readings", "events", "dead_letters")


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("PURPLEAIR_API_KEY", API_KEY)
    monkeypatch.delenv("PURPLEAIR_READ_KEYS", raising=False)


def synthetic(sensors: int = 3, days: int = 3) -> tuple[dict, dict]:
    """Rows of `sensors` nearby sensors every 10 minutes for `days` days (a daily cycle, the
    channels a little apart, a spike), and their positions."""
    rows, positions = {}, {}
    for k in range(sensors):
        sensor = 1000 + k
        positions[sensor] = (42.7 + 0.01 * k, -73.7 + 0.01 * k)
        rows[sensor] = []
        for i in range(days * 144):
            pm = 8 + 4 * math.sin(i / 23.0 + k) + (60 if i == 200 + k else 0)
            rows[sensor].append(
                {
                    "time_stamp": T0 + 600 * i,
                    "humidity": 40.0 + k,
                    "temperature": 70.0 + i % 7,
                    "pressure": 1010.0,
                    "pm2.5_cf_1": round(pm, 2),
                    "pm2.5_cf_1_a": round(pm * 1.02, 2),
                    "pm2.5_cf_1_b": round(pm * 0.98, 2),
                    "pm2.5_atm": round(pm, 2),
                    "pm2.5_atm_a": round(pm * 1.02, 2),
                    "pm2.5_atm_b": round(pm * 0.98, 2),
                }
            )
    return rows, positions


def source(fake: FakeHistory, sensors, days: int, **options) -> HistorySource:
    options = {"fields": FIELDS, "chunk": DAY, "backoff": FAST, **options}
    return HistorySource(sensors, start=T0, end=T0 + days * DAY, base_url=fake.base_url, **options)


def outputs(src) -> dict[str, list[str]]:
    sinks = {o: [] for o in OUT}
    flow = build_flow(
        src, progress=None, **{o: TestingSink(s) for o, s in sinks.items()}
    )
    run_main(flow)
    return {o: sorted(json.dumps(r, sort_keys=True) for r in v) for o, v in sinks.items()}


def history_calls(fake: FakeHistory) -> list[tuple[int, int, int]]:
    """(sensor, start, end) of every history request, in order."""
    return [
        (
            int(r["path"].split("/")[3]),
            int(r["query"]["start_timestamp"]),
            int(r["query"]["end_timestamp"]),
        )
        for r in fake.requests
        if r["path"].endswith("/history")
    ]


@pytest.mark.parametrize("average", sorted(SPAN_DAYS))
def test_chunks_cover_the_span_within_the_averages_limit(average):
    start, end = 1_600_000_000, 1_600_000_000 + 4000 * DAY + 17
    windows = HistoryPlan([1], start, end, average, ["pm2.5_atm_a"]).windows
    assert windows[0][0] == start and windows[-1][1] == end
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(0 < b - a <= SPAN_DAYS[average] * DAY for a, b in windows)
    assert len(windows) == math.ceil((end - start) / (SPAN_DAYS[average] * DAY))
    with pytest.raises(ValueError, match="chunk must be"):
        HistoryPlan([1], start, end, average, ["pm2.5_atm_a"], chunk=SPAN_DAYS[average] * DAY + 1)


def test_the_fake_refuses_a_span_over_the_limit_and_unknown_fields():
    rows, positions = synthetic(1, 1)
    with FakeHistory(rows, positions) as fake:
        url = f"{fake.base_url}/sensors/1000/history"
        headers = {"X-API-Key": API_KEY}

        def status(span: int, fields: str = "pm2.5_atm_a") -> int:
            query = {
                "start_timestamp": T0,
                "end_timestamp": T0 + span,
                "average": 10,
                "fields": fields,
            }
            return requests.get(url, params=query, headers=headers, timeout=5).status_code

        assert status(60 * DAY) == 200
        assert status(60 * DAY + 1) == 400
        assert status(DAY, "pm2.5_atm_a,last_seen") == 400


@pytest.fixture(scope="module")
def ajl_week(tmp_path_factory):
    """A week of the real history of 11 sensors (winter 2023: channel faults, a wood stove), as
    JSON lines of polls."""
    if not AJL.is_file():
        pytest.skip(f"real PurpleAir history not found at {AJL} (../shared/data/)")
    start, end = 1_701_388_800, 1_701_388_800 + 7 * DAY  # 2023-12-01
    with gzip.open(AJL, "rb") as fh:
        lines = [line for line in fh if start <= json.loads(line)["data_time_stamp"] < end]
    path = tmp_path_factory.mktemp("ajl") / "polls.jsonl"
    path.write_bytes(b"".join(lines))
    return path, lines, start, end


def test_a_backfill_through_the_fake_api_equals_the_same_history_read_from_a_file(ajl_week):
    path, lines, start, end = ajl_week
    rows, positions = history_from_polls(lines)
    want = outputs(str(path))
    with FakeHistory(rows, positions) as fake:
        src = HistorySource(
            sorted(rows),
            start=start,
            end=end,
            fields=FIELDS,
            chunk=2 * DAY,
            base_url=fake.base_url,
            backoff=FAST,
        )
        got = outputs(src)
        calls = history_calls(fake)
        assert src.ledger.spent == fake.charged > 0  # counted as the server charged
    assert got == want
    assert len(want["readings"]) > 10_000 and len(want["output"]) > 10
    assert len(calls) == len(rows) * 4  # 7 days in chunks of 2: 4 requests a sensor
    for sensor in rows:  # each sensor's chunks asked for in time order
        starts = [a for s, a, _b in calls if s == sensor]
        assert starts == sorted(starts) and len(set(starts)) == 4


def test_outages_rate_limits_and_bad_bodies_are_retried_and_lose_nothing(caplog):
    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions) as fake:
        want = outputs(source(fake, sorted(rows), 2))
    faults = {
        0: ("status", 429, {"Retry-After": "0"}),
        2: ("status", 503, {}),
        3: ("body", b"<html>gateway</html>"),
        5: ("body", b'{"fields": "time_stamp", "data": []}'),
    }
    caplog.set_level("WARNING", logger="air_quality.history")
    with FakeHistory(rows, positions, faults=faults) as fake:
        got = outputs(source(fake, sorted(rows), 2))
        assert fake.history_requests == 6 + len(faults)
    assert got["readings"] == want["readings"] and got["output"] == want["output"]
    dead = [json.loads(d) for d in got["dead_letters"]]
    assert len(dead) == 2 and all(d["reason"].startswith("not a history answer") for d in dead)
    text = caplog.text
    assert "HTTP 429" in text and "HTTP 503" in text and "retrying in" in text


def test_retry_after_is_waited_for():
    rows, positions = synthetic(1, 1)
    with FakeHistory(rows, positions, faults={0: ("status", 429, {"Retry-After": "7"})}) as fake:
        src = source(fake, [1000], 1)
        part = src.build_part("read", src.list_parts()[0], None)
        before = datetime.now(UTC)
        assert part.next_batch() == []
        assert part.next_awake() - before >= timedelta(seconds=7)
        part.close()


def test_a_chunk_that_never_answers_well_is_given_up_as_a_dead_letter():
    rows, positions = synthetic(2, 1)
    faults = {n: ("body", b"nope") for n in range(5)}
    with FakeHistory(rows, positions, faults=faults) as fake:
        got = outputs(source(fake, sorted(rows), 1))
    reasons = [json.loads(d)["reason"] for d in got["dead_letters"]]
    assert sum(r.startswith("not a history answer") for r in reasons) == 5
    assert sum(r.startswith("chunk given up after 5") for r in reasons) == 1
    assert len(got["readings"]) == 144  # the other sensor's day


def cli(fake_url: str, *extra: str) -> list[str]:
    return [
        "--from-api", "--sensors", "1000,1001,1002", "--start", str(T0),
        "--end", str(T0 + 2 * DAY), "--fields", ",".join(FIELDS), "--base-url", fake_url,
        "--chunk-days", "1", "--progress", "0", *extra,
    ]  # fmt: skip


def test_payment_required_stops_with_one_line(tmp_path, capsys):
    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions, points=6000) as fake:
        code = main([*cli(fake.base_url), "--output", str(tmp_path / "a.jsonl")])
        assert fake.charged <= 6000
    err = [line for line in capsys.readouterr().err.splitlines() if "backfill:" not in line]
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith("backfill stopped: PurpleAir answered 402 Payment Required")


def test_a_refused_key_fails_with_one_line(tmp_path, capsys, monkeypatch):
    rows, positions = synthetic(3, 2)
    monkeypatch.setenv("PURPLEAIR_API_KEY", "wrong")
    with FakeHistory(rows, positions) as fake:
        code = main([*cli(fake.base_url), "--output", str(tmp_path / "a.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("configuration error: PurpleAir answered HTTP 403")
    assert "PURPLEAIR_API_KEY" in err[0]


def test_a_private_sensor_needs_its_read_key(monkeypatch):
    rows, positions = synthetic(2, 1)
    with FakeHistory(rows, positions, read_keys={1001: "rk"}) as fake:
        monkeypatch.setenv("PURPLEAIR_READ_KEYS", "1001=rk")
        got = outputs(source(fake, sorted(rows), 1))
        assert len(got["readings"]) == 288
        monkeypatch.delenv("PURPLEAIR_READ_KEYS")
        with pytest.raises(Exception) as caught:
            outputs(source(fake, sorted(rows), 1))
    assert "HTTP 403 for sensor 1001" in str(configuration_error(caught.value))


def test_the_sensors_of_a_bounding_box_or_a_group():
    rows, positions = synthetic(3, 1)
    with FakeHistory(rows, positions, groups={7: [1000, 1002]}) as fake:
        box = source(fake, None, 1, bbox=(-73.705, 42.715, -73.685, 42.695))
        group = source(fake, None, 1, group=7)
    assert box.plan.sensors == [1000, 1001] and group.plan.sensors == [1000, 1002]
    assert box.positions[1001] == positions[1001]


def test_the_run_budget_stops_before_it_is_passed(tmp_path, capsys):
    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions) as fake:
        extra = ["--budget-points", "9000", "--events", str(tmp_path / "e")]
        code = main([*cli(fake.base_url, *extra), "--output", str(tmp_path / "a")])
        assert 0 < fake.charged <= 9000
    err = [line for line in capsys.readouterr().err.splitlines() if "backfill:" not in line]
    assert code == 1 and len(err) == 1
    assert err[0].startswith("backfill stopped: points budget: the next request")


def test_the_hourly_budget_slows_down_or_stops():
    now = [0.0]
    ledger = PointsLedger(Budget(per_hour=1000), clock=lambda: now[0])
    assert ledger.wait_for(600) == 0
    ledger.spend("history", 600)
    now[0] = 100.0
    ledger.spend("history", 300)
    assert ledger.wait_for(200) == pytest.approx(3500)  # when the first 600 age out
    now[0] = 3601.0
    assert ledger.wait_for(200) == 0
    stop = PointsLedger(Budget(per_hour=1000, on_limit="stop"), clock=lambda: 0.0)
    stop.spend("history", 900)
    with pytest.raises(BudgetExceeded, match="in the last hour"):
        stop.wait_for(200)


def test_the_dry_run_prints_the_cost_and_sends_nothing(capsys):
    code = main([*cli("http://127.0.0.1:9/v1"), "--dry-run"])
    assert code == 0
    line = capsys.readouterr().out.strip()
    # 3 sensors x 2 chunks of a day: 6 requests of base 5 and 144 rows of 14 points (5 fields
    # averaged over both channels at 2, 4 single-channel ones at 1)
    rows, points = 3 * 2 * 144, 6 * (5 + 144 * (5 * 2 + 4 * 1))
    assert line.endswith(
        f"6 requests of at most 1 days, at most {rows:,} rows, at most {points:,} points"
    )


def test_a_resumed_window_skips_exactly_the_rows_it_had_emitted():
    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions) as fake:
        src = source(fake, sorted(rows), 2, batch_size=100)

        def drain(resume) -> list:
            part = src.build_part("read", src.list_parts()[0], resume)
            out = []
            for _ in range(1000):
                try:
                    out.extend(part.next_batch())
                except StopIteration:
                    return out
            raise AssertionError("the partition did not finish")

        whole = drain(None)
        resumed = drain(HistoryPosition(1, 250))
    assert len(whole) == 864
    assert [(r.sensor_index, r.time) for r in resumed] == [
        (r.sensor_index, r.time) for r in whole[432 + 250 :]
    ]
    assert [r.time for r in whole] == sorted(r.time for r in whole)


def test_killed_part_way_and_resumed_the_database_holds_each_row_once(tmp_path):
    rows, positions = synthetic(3, 6)
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    with FakeHistory(rows, positions) as fake:
        sinks = {o: [] for o in OUTPUTS}
        src = source(fake, sorted(rows), 6)
        run_main(
            build_flow(
                src,
                progress=None,
                **{o: TestingSink(s) for o, s in sinks.items()},
            )
        )
    want = {OUTPUTS[o]: records for o, records in sinks.items()}
    db, log = recovery_dir(tmp_path), tmp_path / "run.log"
    with FakeHistory(rows, positions, hold_after=8) as fake:  # held in the third window
        options = {
            "base_url": fake.base_url,
            "chunk": DAY,
            "fields": FIELDS,
            "backoff": {"base": 0.01, "cap": 0.05},
            "progress": None,
        }
        outs = "".join(f", {o}={url!r}" for o in OUTPUTS)
        target = (
            f"dataflows.backfill:history_flow({sorted(rows)!r}, start={T0}, end={T0 + 6 * DAY}, "
            f"source_options={options!r}{outs})"
        )
        command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "1", "-b", "0"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def start() -> subprocess.Popen:
            with log.open("a") as out:
                return subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                )

        proc = start()
        try:
            first = None
            for _ in range(1200):  # at most 60 s
                assert proc.poll() is None, log.read_text()[-3000:]
                if fake.answered >= 8 and first is None:
                    first = commit_epoch(db)
                if first is not None and commit_epoch(db) > first + 1:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the back-fill was not held: " + log.read_text()[-3000:])
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        before = len(fetch(url, "readings"))
        fake.release()
        proc = start()
        assert proc.wait(timeout=240) == 0, log.read_text()[-3000:]
        asked = history_calls(fake)
    for table, records in want.items():
        assert matches(fetch(url, table), expected(table, records)), table
    assert 0 < before < len(fetch(url, "readings")) == 3 * 6 * 144
    # resumed, not restarted: after the hold, only the third window on were asked for
    after = asked[len(asked) - (3 * 6 - 6) :]
    assert min(a for _s, a, _b in after) == T0 + 2 * DAY


def test_points_are_logged_each_hour_and_counted_in_prometheus():
    from prometheus_client import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("purpleair_points_total", {"endpoint": "history"}) or 0

    now, lines = [0.0], []
    ledger = PointsLedger(clock=lambda: now[0], write=lines.append)
    before = counted()
    ledger.spend("history", 500)
    now[0] = 1800.0
    ledger.spend("history", 250)
    assert lines == []
    now[0] = 3700.0
    ledger.spend("history", 100)
    assert lines == ["points: 750 in the last hour, 850 this run"]
    assert counted() - before == 850
    assert ledger.summary() == "points: 850 spent in 3 requests this run"


def test_the_front_doors_backfill_from_the_api_equals_the_modules(tmp_path):
    """`air-quality backfill --from-api` (its own processes, the API's root from the
    configuration's `--base-url`) gives the anomalies and readings of `dataflows.backfill`."""
    import subprocess
    import sys

    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions) as fake:
        assert main([*cli(fake.base_url), "--output", str(tmp_path / "module.jsonl"),
                     "--readings", str(tmp_path / "module-readings.jsonl")]) == 0  # fmt: skip
        command = [
            sys.executable, "-m", "air_quality_stream", "backfill", *cli(fake.base_url),
            "--output", str(tmp_path / "door.jsonl"),
            "--readings", str(tmp_path / "door-readings.jsonl"),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("", "-readings"):
        module = (tmp_path / f"module{name}.jsonl").read_text().splitlines()
        door = (tmp_path / f"door{name}.jsonl").read_text().splitlines()
        assert sorted(door) == sorted(module) and len(module) > 0


def test_the_front_door_says_why_a_backfill_stopped_without_an_engine_panic(tmp_path):
    """402 mid-run through `air-quality backfill --from-api`: the input ends where it was (a
    resume goes on from there), one `backfill stopped:` line, exit 1, no Rust panic text."""
    import subprocess
    import sys

    rows, positions = synthetic(3, 2)
    with FakeHistory(rows, positions, points=6000) as fake:
        command = [
            sys.executable, "-m", "air_quality_stream", "backfill", *cli(fake.base_url),
            "--output", str(tmp_path / "a.jsonl"),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "panicked" not in done.stderr and "Traceback" not in done.stderr
    stops = [line for line in done.stderr.splitlines() if line.startswith("backfill stopped: ")]
    assert len(stops) == 1 and "402 Payment Required" in stops[0]
