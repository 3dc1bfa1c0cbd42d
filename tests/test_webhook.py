"""The webhook sink against a loopback server that fails some requests; the JSON-lines file sink
with several processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bytewax.testing import TestingSink, run_main

from benchmarks.run import free_ports
from core.json_lines import to_line
from data import simulate
from dataflows.air_quality import build_flow
from sinks.jsonlines import JsonLinesSink
from sinks.webhook import WebhookSink
from sources.retry import Backoff
from tests.conftest import ROOT


class Receiver:
    """A loopback alert receiver: `script` maps a request number to a status (default 200)."""

    def __init__(self, script=None, hang=0.0):
        self.script = dict(script or {})
        self.hang = hang
        self.requests: list[tuple[int, list]] = []  # (status answered, records)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = receiver.next_answer(json.loads(body))
                if status == "hang":
                    threading.Event().wait(receiver.hang)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.lock = threading.Lock()

    def next_answer(self, records):
        with self.lock:
            answer = self.script.get(len(self.requests), 200)
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            self.requests.append((status, records))
            return status, headers

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/alerts"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def records(n, start=0):
    return [{"sensor_index": i, "score": 0.9} for i in range(start, start + n)]


def sink(url, dead, **options):
    options = {"backoff": Backoff(base=0.01, cap=0.05), "timeout": (1.0, 0.3), "seed": 1, **options}
    return WebhookSink(url, dead_letters=str(dead), **options)


def test_delivers_in_chunks_and_retries_5xx_and_429(tmp_path):
    dead = tmp_path / "dead.jsonl"
    script = {0: 500, 1: (429, {"Retry-After": "0"}), 3: 503}
    with Receiver(script) as receiver:
        part = sink(receiver.url, dead, max_batch=4).build("out", 0, 1)
        part.write_batch(records(6))
        part.write_batch([])
        part.close()
    assert [status for status, _ in receiver.requests] == [500, 429, 200, 503, 200]
    delivered = [r for status, body in receiver.requests if status == 200 for r in body]
    assert delivered == records(6)
    assert not dead.exists() or dead.read_text() == ""


def test_what_cannot_be_delivered_goes_to_the_dead_letter_file(tmp_path):
    dead = tmp_path / "dead.jsonl"
    script = {0: 500, 1: 500, 2: 500, 3: 400, 4: "hang", 5: "hang"}
    with Receiver(script, hang=0.6) as receiver:
        part = sink(receiver.url, dead, retries=2, max_batch=2).build("out", 0, 1)
        part.write_batch(records(6))  # chunk 1: 3 x 500; chunk 2: 400; chunk 3: 2 timeouts, ok
        part.close()
    assert [status for status, _ in receiver.requests] == [500, 500, 500, 400, "hang", "hang", 200]
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [d["raw"] for d in lines] == records(4)
    assert lines[0]["reason"] == "HTTP 500: 'no' (after 3 attempts)"
    assert lines[2]["reason"] == "HTTP 400: 'no'"
    assert {d["origin"] for d in lines} == {f"webhook:{receiver.url}"}
    assert receiver.requests[-1][1] == records(2, start=4)


def test_an_unreachable_url_is_dead_lettered_after_the_retries(tmp_path):
    dead = tmp_path / "dead.jsonl"
    part = sink("http://127.0.0.1:9/alerts", dead, retries=1).build("out", 0, 1)
    part.write_batch(records(2))
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [d["raw"] for d in lines] == records(2)
    reason = lines[0]["reason"]
    assert reason == (
        "NewConnectionError: Failed to establish a new connection: [Errno 111] Connection refused"
        " (after 2 attempts)"
    )


def test_bad_options():
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://x", dead_letters="d.jsonl")
    with pytest.raises(ValueError, match="retries"):
        WebhookSink("http://127.0.0.1/", dead_letters="d.jsonl", retries=-1)


def test_file_sink_lines_stay_whole_with_concurrent_writers(tmp_path):
    """Several partitions (as several workers or processes would) appending big batches."""
    path = tmp_path / "out.jsonl"
    batches = [[{"w": w, "i": i, "pad": "x" * 300} for i in range(2000)] for w in range(4)]
    parts = [JsonLinesSink(str(path)).build("out", w, 4) for w in range(4)]
    threads = [
        threading.Thread(target=p.write_batch, args=(b,))
        for p, b in zip(parts, batches, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in parts:
        p.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["w"], r["i"]) for r in lines) == [
        (w, i) for w in range(4) for i in range(2000)
    ]


def test_two_processes_from_an_addresses_file_alert_once_per_anomaly(tmp_path):
    """2 processes (`BYTEWAX_HOSTFILE_PATH`), anomalies to a file and a webhook that fails now and
    then: both get exactly the anomalies of one worker, lines whole, nothing dead-lettered."""
    polls_path, _ = simulate.write(simulate.generate(seed=5, n_sensors=8, hours=12), tmp_path)
    want = []
    # the example's detector alerts often: many alerts to deliver once each
    flow = build_flow(
        str(polls_path), detector="hst", output=TestingSink(want), events=TestingSink([])
    )
    run_main(flow)
    hostfile = tmp_path / "addresses.txt"
    hostfile.write_text("".join(f"127.0.0.1:{p}\n" for p in free_ports(2)))
    out, dead = tmp_path / "anomalies.jsonl", tmp_path / "undelivered.jsonl"
    with Receiver({0: 503, 2: 500}) as receiver:
        webhook = {"url": receiver.url, "backoff": {"base": 0.01, "cap": 0.05}}
        target = (
            f"dataflows.air_quality:build_flow({str(polls_path)!r}, output={str(out)!r}, "
            f"webhook={webhook!r}, webhook_dead_letters={str(dead)!r}, events='/dev/null', "
            "detector='hst')"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BYTEWAX_HOSTFILE_PATH": str(hostfile)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "bytewax.run", target, "-i", str(i)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode()[-2000:]
    want_lines = sorted(to_line(record) for record in want)
    assert len(want_lines) >= 4
    assert sorted(out.read_text().splitlines()) == want_lines
    delivered = [r for status, body in receiver.requests if status == 200 for r in body]
    assert sorted(map(to_line, delivered)) == want_lines
    statuses = [status for status, _ in receiver.requests]  # how many POSTs: as batches fall
    assert len(statuses) >= 2 and statuses == [
        {0: 503, 2: 500}.get(i, 200) for i in range(len(statuses))
    ]  # every failed POST retried, every other one delivered
    assert not dead.exists()
