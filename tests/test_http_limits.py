"""The HTTP edges (issue 20): a total deadline, byte caps on the wire and decoded, redirects to
the same origin only, and one short line per retry, for the live poller, the URL source and
the webhook sink, against a hostile server on 127.0.0.1 (`tests/hostile_http.py`).

Oracles: the wall clock (`time.monotonic`), `tracemalloc`'s peak, what the server received,
and `gzip`/`zlib` of the standard library for what a body decodes to.
"""

from __future__ import annotations

import json
import logging
import random
import time
import tracemalloc
import zlib

import pytest
import requests

from config import resolve
from core.errors import ConfigError
from core.readings import DeadLetter, Reading
from data import simulate
from sinks.webhook import WebhookSink
from sources.documents import SourceError
from sources.http import HttpLimitError, HttpLimits, bounded_session, fetch
from sources.poller import API_KEY_ENV, PurpleAirPoller, PurpleAirRequestError
from sources.purpleair import PurpleAirSource
from sources.retry import Backoff, cause, retrying
from tests.hostile_http import Hostile, MiB, answer, gzip_bomb, gzipped, head, trickle

KEY = "secret-test-key"
#: Short limits, so that each hostile case ends within about a second.
LIMITS = {"deadline_s": 1.0, "max_bytes": 2 * MiB, "max_decoded_bytes": 4 * MiB}
#: How long a case may take in all: the deadline and a generous margin for a busy machine.
SOON = 3.0


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, KEY)


@pytest.fixture(scope="module")
def poll():
    """One recorded poll of 5 simulated sensors, as the API's JSON."""
    return json.dumps(simulate.generate(seed=3, n_sensors=5, hours=0.05).polls[0]).encode()


def poll_once(base_url, **limits):
    """One poll of a poller on `base_url` (with LIMITS and `limits`): (batch, seconds)."""
    source = PurpleAirPoller(
        base_url + "/v1", interval=120.0, timeout=(1.0, 0.5), limits={**LIMITS, **limits}, seed=1
    )
    part = source.build_part("read", "purpleair-api", None)
    started = time.monotonic()
    try:
        return part.next_batch(), time.monotonic() - started
    finally:
        part.close()


def read_url(url, **limits):
    source = PurpleAirSource(url, split=False, limits={**LIMITS, **limits})
    return source.build("read", 0, 1).next_batch()


# --- the deadline: a total, not per chunk --------------------------------------------------


def slow_body(query, body):
    yield head(200, {"Content-Length": "100"}), 0.0
    yield from trickle(b" " * 100, 0.1)  # 10 s, each byte well within the read timeout


def slow_head(query, body):
    yield from trickle(head(200, {"Content-Length": "2", "X-Pad": "x" * 100}) + b"{}", 0.1)


@pytest.mark.parametrize("route", [slow_body, slow_head], ids=["body", "headers"])
def test_a_poll_of_a_server_sending_a_byte_at_a_time_ends_by_the_deadline(route, caplog):
    with Hostile({"/v1/sensors": route}) as server, caplog.at_level(logging.WARNING):
        batch, seconds = poll_once(server.url)
    assert batch == [] and 1.0 <= seconds < SOON  # retried later, as a timeout is
    [line] = [r.getMessage() for r in caplog.records]
    assert "no complete answer within 1 s" in line and "retry 1 in" in line
    assert len(line) < 200


def test_the_url_source_and_the_webhook_end_by_the_deadline(tmp_path):
    # the webhook's server trickles its head: a POST answered 2xx in time was delivered
    with Hostile({"/polls.json": slow_body, "/hook": slow_head}) as server:
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"polls.json: no complete answer within 1 s"):
            read_url(server.url + "/polls.json")
        assert time.monotonic() - started < SOON
        dead = tmp_path / "dead.jsonl"
        sink = WebhookSink(
            server.url + "/hook",
            dead_letters=str(dead),
            limits=LIMITS,
            retries=1,
            backoff=Backoff(base=0.01, cap=0.02),
            seed=1,
        )
        part = sink.build("out", 0, 1)
        started = time.monotonic()
        part.write_batch([{"sensor_index": 1}])
        part.close()
        assert time.monotonic() - started < 2 * SOON  # two attempts
    [line] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert line["reason"] == "no complete answer within 1 s (after 2 attempts)"


# --- bytes: on the wire and decoded ----------------------------------------------------------


def bomb(query, body):
    yield from answer(200, gzip_bomb(), {"Content-Encoding": "gzip"})


def test_a_gzip_bomb_is_stopped_by_the_decoded_cap_in_bounded_memory(caplog):
    assert len(gzip_bomb()) < 2 * MiB  # small on the wire: only the decoded cap can stop it
    with Hostile({"/v1/sensors": bomb}) as server, caplog.at_level(logging.WARNING):
        tracemalloc.start()
        try:
            batch, seconds = poll_once(server.url)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    [letter] = batch
    assert isinstance(letter, DeadLetter)
    assert letter.reason == f"the body decodes to more than max_decoded_bytes={4 * MiB}"
    assert peak < 4 * LIMITS["max_decoded_bytes"]  # the bomb unpacks to 64 MiB
    assert seconds < SOON


def test_the_url_source_stops_a_gzip_bomb_too():
    with Hostile({"/polls.json": bomb}) as server:
        tracemalloc.start()
        try:
            with pytest.raises(SourceError, match="decodes to more than max_decoded_bytes"):
                read_url(server.url + "/polls.json")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 4 * LIMITS["max_decoded_bytes"]


def endless(query, body):
    yield head(200), 0.0  # no Content-Length: the body ends when the connection closes
    for _ in range(200):  # 200 MiB at most
        yield bytes(MiB), 0.0


def declared(query, body):
    yield head(200, {"Content-Length": str(100 * MiB)}), 0.0
    yield bytes(MiB), 0.0


@pytest.mark.parametrize(
    "route, reason",
    [
        (endless, f"the body is over max_bytes={2 * MiB}"),
        (declared, f"Content-Length {100 * MiB} is over max_bytes={2 * MiB}"),
    ],
    ids=["streamed", "declared"],
)
def test_an_oversized_plain_body_is_a_dead_letter_and_the_next_poll_is_at_the_interval(
    route, reason
):
    with Hostile({"/v1/sensors": route}) as server:
        tracemalloc.start()
        try:
            [letter], seconds = poll_once(server.url)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert isinstance(letter, DeadLetter) and letter.reason == reason
    assert peak < 4 * LIMITS["max_bytes"] and seconds < SOON


def test_gzip_and_deflate_bodies_decode_as_the_standard_library_does(poll):
    raw_deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    bodies = {
        "/gzip": (gzipped(poll), "gzip"),
        "/two-members": (gzipped(poll[:100]) + gzipped(poll[100:]), "gzip"),
        "/zlib": (zlib.compress(poll), "deflate"),
        "/raw-deflate": (raw_deflate.compress(poll) + raw_deflate.flush(), "deflate"),
        "/plain": (poll, "identity"),
    }
    routes = {
        path: (
            lambda q, b, data=data, coding=coding: answer(200, data, {"Content-Encoding": coding})
        )
        for path, (data, coding) in bodies.items()
    }
    routes["/broken"] = lambda q, b: answer(200, gzipped(poll)[:-20], {"Content-Encoding": "gzip"})
    routes["/br"] = lambda q, b: answer(200, b"\x1b", {"Content-Encoding": "br"})
    with Hostile(routes) as server, bounded_session() as session:
        for path in bodies:
            result = fetch(session, server.url + path, limits=HttpLimits(**LIMITS))
            assert (path, result.status, result.body) == (path, 200, poll)
        with pytest.raises(HttpLimitError, match="ends early|does not decode"):
            fetch(session, server.url + "/broken", limits=HttpLimits(**LIMITS))
        with pytest.raises(HttpLimitError, match="unsupported Content-Encoding 'br'"):
            fetch(session, server.url + "/br", limits=HttpLimits(**LIMITS))
    assert {r["headers"]["accept-encoding"] for r in server.requests} == {"gzip, deflate"}


# --- redirects: the same origin only ------------------------------------------------------


def test_a_redirect_to_another_port_is_not_followed_with_the_key(poll):
    with Hostile({"/v1/sensors": lambda q, b: answer(200, poll)}) as elsewhere:
        moved = {"Location": elsewhere.url + "/v1/sensors"}
        with Hostile({"/v1/sensors": lambda q, b: answer(302, b"", moved)}) as server:
            with pytest.raises(PurpleAirRequestError, match="to another origin.*not followed"):
                poll_once(server.url)
            with pytest.raises(SourceError, match="to another origin"):
                read_url(server.url + "/v1/sensors")
    assert elsewhere.requests == []
    assert server.requests[0]["headers"]["x-api-key"] == KEY


def test_a_same_origin_redirect_still_works(poll):
    routes = {
        "/v1/sensors": lambda q, b: answer(307, b"", {"Location": "/v2/sensors?fields=x"}),
        "/v2/sensors": lambda q, b: answer(200, poll),
    }
    with Hostile(routes) as server:
        batch, _ = poll_once(server.url)
    assert len([item for item in batch if isinstance(item, Reading)]) == 5
    assert [r["path"] for r in server.requests] == ["/v1/sensors", "/v2/sensors"]
    assert {r["headers"]["x-api-key"] for r in server.requests} == {KEY}


def test_a_webhook_redirected_elsewhere_dead_letters_without_sending_there(tmp_path):
    with Hostile({"/hook": lambda q, b: answer(200)}) as elsewhere:
        moved = {"Location": elsewhere.url + "/hook"}
        with Hostile({"/hook": lambda q, b: answer(308, b"", moved)}) as server:
            dead = tmp_path / "dead.jsonl"
            sink = WebhookSink(
                server.url + "/hook", dead_letters=str(dead), limits=LIMITS, retries=2, seed=1
            )
            part = sink.build("out", 0, 1)
            part.write_batch([{"sensor_index": 1}])
            part.close()
    assert elsewhere.requests == [] and len(server.requests) == 1  # refused, not retried
    [line] = [json.loads(line) for line in dead.read_text().splitlines()]
    assert "to another origin" in line["reason"] and line["raw"] == {"sensor_index": 1}


def test_a_webhook_answer_over_the_cap_after_a_2xx_is_delivered(tmp_path):
    with Hostile({"/hook": endless}) as server:
        dead = tmp_path / "dead.jsonl"
        sink = WebhookSink(server.url + "/hook", dead_letters=str(dead), limits=LIMITS, seed=1)
        part = sink.build("out", 0, 1)
        part.write_batch([{"sensor_index": 1}])
        part.close()
    assert len(server.requests) == 1 and not dead.exists()


# --- limits are checked; retries log one short line with a seeded wait ----------------------


@pytest.mark.parametrize(
    "options",
    [
        {"deadline_s": 0},
        {"deadline_s": float("nan")},
        {"deadline_s": float("inf")},
        {"connect_s": -1.0},
        {"max_bytes": 0},
        {"max_decoded_bytes": 1.5},
        {"max_redirects": -1},
    ],
)
def test_limits_must_be_finite_and_positive(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        HttpLimits(**options)


def test_an_outage_logs_one_short_line_per_retry_with_the_wait_and_the_cause(caplog):
    with caplog.at_level(logging.WARNING):
        batch, _ = poll_once("http://127.0.0.1:9")  # nothing listens on port 9
    [line] = [r.getMessage() for r in caplog.records]
    assert batch == [] and len(line) < 200
    assert line.startswith("poll of http://127.0.0.1:9/v1/sensors (NewConnectionError: ")
    assert "Connection refused); retry 1 in " in line and line.endswith(" s")
    with pytest.raises(requests.ConnectionError) as raised:
        requests.get("http://127.0.0.1:9/", timeout=1)
    assert len(str(raised.value)) > 150 and len(cause(raised.value)) < 100


def test_the_retry_loop_waits_the_seeded_jitter_and_gives_up_after_its_budget(caplog):
    def run(seed):
        waits, calls = [], []

        def attempt():
            calls.append(1)
            raise ConnectionResetError("reset by peer")

        retryer = retrying(
            "write",
            policy=Backoff(base=1.0, cap=4.0),
            retries=4,
            rng=random.Random(seed),
            transient=lambda exc: isinstance(exc, ConnectionResetError),
            log=logging.getLogger("test.retry"),
            sleep=waits.append,
        )
        with pytest.raises(ConnectionResetError):
            retryer(attempt)
        return waits, len(calls)

    with caplog.at_level(logging.WARNING, "test.retry"):
        waits, calls = run(7)
    assert calls == 5 and run(7) == (waits, 5) and run(8)[0] != waits
    steps = [1.0, 2.0, 4.0, 4.0]  # min(cap, base * 2**n)
    assert all(step / 2 <= wait <= step for wait, step in zip(waits, steps, strict=True))
    lines = [r.getMessage() for r in caplog.records][:4]
    assert (
        lines[0] == f"write (ConnectionResetError: reset by peer); retry 1 of 4 in {waits[0]:.1f} s"
    )


@pytest.mark.parametrize(
    "toml, error",
    [
        (
            "[source.purpleair.limits]\ndeadline = nan",
            "[source.purpleair.limits] deadline: nan is not finite; allowed: finite numbers",
        ),
        (
            "[source.purpleair]\ntimeout = [-1.0, 5.0]",
            "[source.purpleair] timeout: (-1.0, 5.0) is out of range; allowed: seconds above 0 "
            "and at most 3600",
        ),
        (
            "[outputs.webhook]\ntimeout = [1.0, inf]",
            "[outputs.webhook] timeout: [1.0, inf] holds a number that is not finite; allowed: "
            "finite numbers",
        ),
        (
            "[source.limits]\nmax_decoded_bytes = 0",
            "[source.limits] max_decoded_bytes: 0 is out of range; allowed: at least 1",
        ),
    ],
)
def test_limits_in_a_configuration_file_are_checked_in_one_line(tmp_path, toml, error):
    path = tmp_path / "flow.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as raised:
        resolve(path)
    assert str(raised.value) == f"{path}: {error}"
