"""Counts: the progress log, the Prometheus counters against the run's totals, and the counters
served on bytewax's own API endpoint while a live (polling) flow runs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import requests
from bytewax.testing import TestingSink, run_main
from prometheus_client import REGISTRY

from benchmarks.run import free_ports
from data import simulate
from dataflows.air_quality import build_flow
from sinks.metrics import Progress
from sources.poller import API_KEY_ENV
from tests.conftest import ROOT, payload, write_lines
from tests.fake_purpleair import API_KEY, FakePurpleAir

NAMES = ("readings", "anomalies", "dead_letters")


def sample(name, **labels):
    return REGISTRY.get_sample_value(f"air_quality_{name}_total", labels) or 0.0


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_logs_totals_and_rate_at_its_interval(caplog):
    clock = Clock()
    progress = Progress(5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="air_quality.progress"):
        for _ in range(3):
            clock.now += 2.0
            progress.received(2, {"humidity": 1})
        progress.anomalies([{}])
        progress.dead_letters([{}, {}])
        clock.now += 5.0
        progress.received(0, {"humidity": 1})  # a placeholder, imputed
    assert [r.getMessage() for r in caplog.records] == [
        "progress: 6 readings (1/s), 0 anomalies, 0 dead letters, imputed humidity=3, after 6 s",
        "progress: 6 readings (0/s), 1 anomalies, 2 dead letters, imputed humidity=4, after 11 s",
    ]
    assert progress.counts() == {
        "readings": 6,
        "imputed:humidity": 4,
        "anomalies": 1,
        "dead_letters": 2,
    }


def test_prometheus_counters_match_the_totals(tmp_path):
    rows = [
        [s, 1000 + 120 * t, None if t % 7 == 3 else 40.0, 5.0] for t in range(90) for s in (1, 2)
    ]
    rows[-1][3] = 900.0
    path = write_lines(tmp_path / "p.jsonl", [payload(rows[:100]), "{oops", payload(rows[100:])])
    before = {name: sample(name) for name in NAMES} | {
        "humidity": sample("imputed_values", field="humidity")
    }
    totals, out = [], []
    run_main(
        build_flow(
            str(path), output=TestingSink(out), totals=TestingSink(totals), events=TestingSink([])
        )
    )
    [totals] = totals
    got = {name: sample(name) - before[name] for name in NAMES}
    assert got == {"readings": 180, "anomalies": len(out), "dead_letters": 1}
    assert (totals["readings"], totals["anomalies"], totals["dead_letters"]) == (180, len(out), 1)
    imputed = sample("imputed_values", field="humidity") - before["humidity"]
    assert imputed == totals["imputed:humidity"] > 0
    assert len(out) >= 1


def scrape(url):
    try:
        text = requests.get(url, timeout=2).text
    except requests.RequestException:
        return {}
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("air_quality_")
    }


def test_metrics_are_served_on_the_bytewax_endpoint_during_a_live_run(tmp_path):
    polls = simulate.generate(seed=3, n_sensors=5, hours=0.4).polls  # 12 polls of 5 rows
    port = free_ports(1)[0]
    with FakePurpleAir(polls, hold_after=6) as server:
        options = {
            "base_url": server.base_url,
            "interval": 0.01,
            "max_polls": len(polls),
            "backoff": {"base": 0.05, "cap": 0.2},
        }
        target = (
            f"dataflows.air_quality:build_flow('purpleair', purpleair={options!r}, "
            f"output={str(tmp_path / 'a.jsonl')!r}, events='/dev/null', progress=0.0)"
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            API_KEY_ENV: API_KEY,
            "BYTEWAX_DATAFLOW_API_ENABLED": "true",
            "BYTEWAX_DATAFLOW_API_PORT": str(port),
            "BYTEWAX_DATAFLOW_API_CACHE_PATH": str(tmp_path),  # its dataflow.json, not in the repo
        }
        log = (tmp_path / "run.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bytewax.run", target],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            metrics = {}
            for _ in range(300):  # at most ~30 s: the first 6 polls counted, a held poll answered
                metrics = scrape(f"http://127.0.0.1:{port}/metrics")
                counted = metrics.get("air_quality_readings_total") == 30.0
                if (counted and len(server.requests) > 6) or proc.poll() is not None:
                    break
                time.sleep(0.1)
            server.release()
            assert proc.wait(timeout=60) == 0, (tmp_path / "run.log").read_text()[-3000:]
        finally:
            proc.kill()
            log.close()
    assert metrics["air_quality_readings_total"] == 30.0
    assert metrics["air_quality_dead_letters_total"] == 0.0
    assert "air_quality_anomalies_total" in metrics
    text = (tmp_path / "run.log").read_text()
    assert "progress: 60 readings" in text
    assert "(HTTP 503); retry 1 in" in text
    assert "totals: " in text and "readings=60" in text
