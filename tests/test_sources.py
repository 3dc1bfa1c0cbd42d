"""Documents from files and URLs, and the source's split of sensors over workers."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.readings import DeadLetter, Reading
from sources.documents import SourceError, iter_documents
from sources.purpleair import PurpleAirSource, read_items
from tests.conftest import payload, write_lines


def polls(n_polls=6, sensors=(3, 10, 11, 25, 40, 41, 99)):
    return [
        payload([[s, 1000 + 120 * t, 50.0, float(s + t)] for s in sensors], stamp=1000 + 120 * t)
        for t in range(n_polls)
    ]


def test_json_lines_pretty_single_payload_and_corrupt_first_line(tmp_path):
    docs = polls(3)
    lines = write_lines(tmp_path / "p.jsonl", docs)
    assert [json.loads(d) for _, d in iter_documents(str(lines))] == docs
    pretty = tmp_path / "one.json"
    pretty.write_text(json.dumps(docs[0], indent=2))
    assert [(o, json.loads(d)) for o, d in iter_documents(str(pretty))] == [("one.json", docs[0])]
    broken = write_lines(tmp_path / "b.jsonl", ["{oops", docs[1], "", docs[2]])
    assert [o for o, _ in iter_documents(str(broken))] == ["b.jsonl:1", "b.jsonl:2", "b.jsonl:4"]


def test_missing_file_is_a_clear_error():
    with pytest.raises(SourceError, match="no such file: /nonexistent/x.jsonl"):
        list(iter_documents("/nonexistent/x.jsonl"))


@pytest.fixture
def server():
    """A loopback HTTP server: /ok serves two polls as JSON lines, anything else is a 404."""
    body = "\n".join(json.dumps(p) for p in polls(2)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = 200 if self.path == "/ok" else 404
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body if code == 200 else b"no such thing")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_source_reads_every_row_and_http_errors_are_clear(server):
    items = list(read_items(f"{server}/ok", split=False))
    assert len(items) == 14 and all(isinstance(i, Reading) for i in items)
    with pytest.raises(SourceError, match=r"/missing answered HTTP 404: 'no such thing'"):
        list(iter_documents(f"{server}/missing"))


def test_unreachable_url_is_a_clear_error():
    with pytest.raises(SourceError, match="could not fetch http://127.0.0.1:9/"):
        list(iter_documents("http://127.0.0.1:9/"))


@pytest.mark.parametrize("workers", [2, 3, 5])
def test_workers_split_by_sensor_each_row_once_in_order(tmp_path, workers):
    docs = polls()
    docs[2]["data"].append([7, 1, "bad", 1.0])
    path = write_lines(tmp_path / "p.jsonl", [docs[0], "not json", *docs[1:]])
    whole = list(read_items(str(path)))
    shares = [list(read_items(str(path), w, workers)) for w in range(workers)]
    assert sum(len(s) for s in shares) == len(whole) == 7 * 6 + 2
    owner = {}
    for w, share in enumerate(shares):
        for item in share:
            if isinstance(item, Reading):
                assert owner.setdefault(item.sensor_index, w) == w
    assert Counter(map(repr, whole)) == Counter(repr(i) for s in shares for i in s)
    for share in shares:  # per sensor, times increase
        seen = {}
        for r in (i for i in share if isinstance(i, Reading)):
            assert r.time > seen.get(r.sensor_index, 0)
            seen[r.sensor_index] = r.time
    dead = [i for s in shares for i in s if isinstance(i, DeadLetter)]
    assert sorted(d.reason for d in dead) == [
        "field 'humidity' is a string ('bad'), not a number",
        "not JSON: Expecting value: line 1 column 1 (char 0)",
    ]


def test_partitions_return_batches_of_many_readings(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", polls())
    part = PurpleAirSource(str(path), batch_size=10).build("read", 0, 1)
    sizes = []
    with pytest.raises(StopIteration):
        while True:
            sizes.append(len(part.next_batch()))
    assert sizes == [10, 10, 10, 10, 2]
    other = PurpleAirSource(str(path), split=False).build("read", 1, 2)
    with pytest.raises(StopIteration):
        other.next_batch()
