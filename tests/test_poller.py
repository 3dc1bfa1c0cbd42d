"""The PurpleAir API poller against a loopback server: cadence, resume, faults, auth.

Most tests drive one partition by hand with a fake clock: the driver jumps the clock to each
`next_awake`, so every wait (interval, backoff, Retry-After) is checked exactly and none is slept.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from core.readings import DeadLetter, Reading
from data import simulate
from dataflows.air_quality import build_flow
from sources.poller import (
    API_KEY_ENV,
    DEFAULT_FIELDS,
    PurpleAirAuthError,
    PurpleAirPoller,
    PurpleAirRequestError,
)
from sources.retry import Backoff
from tests.fake_purpleair import API_KEY, FakePurpleAir

START = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def polls():
    """6 recorded polls of 5 simulated sensors (30 rows, a few with nulls)."""
    return simulate.generate(seed=3, n_sensors=5, hours=0.2).polls


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, API_KEY)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


def drive(part, clock, limit=60):
    """Run a partition to its end: a list of (seconds waited before the call, batch)."""
    steps = []
    for _ in range(limit):
        awake = part.next_awake()
        wait = (awake - clock.now).total_seconds()
        clock.now = max(clock.now, awake)
        try:
            batch = part.next_batch()
        except StopIteration:
            return steps
        steps.append((wait, batch))
    raise AssertionError(f"the partition did not stop within {limit} calls")


def poller(server, clock, **options):
    options = {"interval": 120.0, "timeout": (1.0, 0.3), "seed": 1, **options}
    return PurpleAirPoller(server.base_url, clock=clock, **options)


def expected_readings(polls, fields=DEFAULT_FIELDS):
    names = polls[0]["fields"]
    out = []
    for poll in polls:
        for row in poll["data"]:
            # the fake API, like the recorded polls, has no channel fields: it leaves them out
            values = {f: row[names.index(f)] for f in fields if f != "last_seen" and f in names}
            values = {f: None if v is None else float(v) for f, v in values.items()}
            out.append((row[0], row[names.index("last_seen")], values))
    return out


def as_tuples(items):
    return [(r.sensor_index, r.time, r.values) for r in items if isinstance(r, Reading)]


def test_polls_at_the_interval_with_modified_since_and_resume_state(polls):
    clock = Clock()
    with FakePurpleAir(polls) as server:
        source = poller(server, clock, max_polls=len(polls), location_type=0)
        part = source.build_part("read", "purpleair-api", None)
        steps = drive(part, clock)
    assert [wait for wait, _ in steps] == [0.0] + [120.0] * 5
    assert as_tuples(i for _, batch in steps for i in batch) == expected_readings(polls)
    stamps = [p["data_time_stamp"] for p in polls]
    assert [r["query"].get("modified_since") for r in server.requests] == [
        None,
        *map(str, stamps[:-1]),
    ]
    assert {r["key"] for r in server.requests} == {API_KEY}
    assert server.requests[0]["path"] == "/v1/sensors"
    assert server.requests[0]["query"]["fields"] == ",".join(DEFAULT_FIELDS)
    assert server.requests[0]["query"]["location_type"] == "0"
    assert part.snapshot() == stamps[-1]


def test_resume_asks_only_for_what_changed_since_the_saved_stamp(polls):
    clock = Clock()
    with FakePurpleAir(polls) as server:
        server.served = 3  # the server has moved on while the flow was down
        part = poller(server, clock, max_polls=1).build_part(
            "read", "p", polls[2]["data_time_stamp"]
        )
        [(_, batch)] = drive(part, clock)
    assert server.requests[0]["query"]["modified_since"] == str(polls[2]["data_time_stamp"])
    assert as_tuples(batch) == expected_readings(polls[3:4])
    assert part.snapshot() == polls[3]["data_time_stamp"]


def test_faults_are_retried_with_backoff_and_a_bad_body_is_a_dead_letter(polls):
    faults = {
        1: ("status", 429, {"Retry-After": "7"}),
        2: ("status", 500),
        3: ("hang", 0.6),
        4: ("status", 503, {"Retry-After": "Wed, 01 Apr 2026 00:04:00 GMT"}),
        5: ("truncate",),
        7: ("repeat",),
    }
    clock = Clock()
    backoff = Backoff(base=1.0, cap=8.0)
    with FakePurpleAir(polls, faults) as server:
        source = poller(server, clock, max_polls=len(polls) + 2, backoff=backoff)
        steps = drive(part := source.build_part("read", "p", None), clock)
    rng = random.Random(1)
    jitter = [backoff.delay(n, rng=rng) for n in range(4)]
    # clock at each failure: 120 (429), 127 (500), then the hang, then 503 at 127 + jitter[1] + ...
    after_hang = 127.0 + jitter[1] + jitter[2]
    retry_after_date = (datetime(2026, 4, 1, 0, 4, tzinfo=UTC) - START).total_seconds()
    assert [wait for wait, _ in steps] == pytest.approx(
        [
            0.0,  # poll 1
            120.0,  # 429 Retry-After: 7 (the jitter, under 1 s, is less)
            7.0,  # 500
            round(jitter[1], 9),  # timeout after 0.3 s
            round(jitter[2], 9),  # 503 with Retry-After as a date: 00:04:00
            round(
                retry_after_date - after_hang, 9
            ),  # truncated body: a dead letter, failures reset
            120.0,  # poll 2, asks again from poll 1's stamp
            120.0,  # repeat of poll 2: every row dropped
            120.0,  # polls 3 to 6
            120.0,
            120.0,
            120.0,
        ],
        abs=1e-6,
    )
    items = [i for _, batch in steps for i in batch]
    assert as_tuples(items) == expected_readings(polls)
    [dead] = [i for i in items if isinstance(i, DeadLetter)]
    assert dead.reason.startswith("not JSON: ")
    assert dead.origin.endswith("/v1/sensors#poll2")
    assert [len(batch) for _, batch in steps][7] == 0
    since = [r["query"].get("modified_since") for r in server.requests]
    assert since[1:7] == [str(polls[0]["data_time_stamp"])] * 6
    assert part.snapshot() == polls[-1]["data_time_stamp"]


@pytest.mark.parametrize(("fault", "status"), [(None, 401), (("status", 403), 403)])
def test_a_refused_key_stops_with_the_variable_name(polls, monkeypatch, fault, status):
    if fault is None:
        monkeypatch.setenv(API_KEY_ENV, "wrong")
    clock = Clock()
    with FakePurpleAir(polls, {0: fault} if fault else None) as server:
        part = poller(server, clock).build_part("read", "p", None)
        with pytest.raises(PurpleAirAuthError, match=f"HTTP {status}: .*{API_KEY_ENV}"):
            part.next_batch()
    assert len(server.requests) == 1


def test_no_key_stops_before_any_request(polls, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV)
    message = f"set the environment variable {API_KEY_ENV}"
    with FakePurpleAir(polls) as server, pytest.raises(PurpleAirAuthError, match=message):
        poller(server, Clock()).build_part("read", "p", None)
    assert server.requests == []


def test_a_rejected_request_stops_the_flow(polls):
    with FakePurpleAir(polls, {0: ("status", 400)}) as server:
        part = poller(server, Clock()).build_part("read", "p", None)
        with pytest.raises(PurpleAirRequestError, match="HTTP 400"):
            part.next_batch()


def test_filters_and_interval_limits():
    source = PurpleAirPoller(
        "https://api.purpleair.com/v1",
        fields=("last_seen", "pm1.0_cf_1"),
        bbox=(-122.5, 38.0, -121.8, 37.3),
        show_only=[3, 10],
        max_age=3600,
        location_type=1,
    )
    assert source.params(1000) == {
        "fields": "last_seen,pm1.0_cf_1",
        "location_type": "1",
        "nwlng": "-122.5",
        "nwlat": "38.0",
        "selng": "-121.8",
        "selat": "37.3",
        "show_only": "3,10",
        "max_age": "3600",
        "modified_since": "1000",
    }
    assert source.interval == timedelta(seconds=120)
    with pytest.raises(ValueError, match="below 60 s"):
        PurpleAirPoller("https://api.purpleair.com/v1", interval=30)
    assert (
        PurpleAirPoller("http://localhost:8080/v1", interval=0.01).interval.total_seconds() == 0.01
    )
    with pytest.raises(ValueError, match="bbox"):
        PurpleAirPoller(bbox=(1, 2, 3))


def test_in_a_dataflow_with_the_real_clock(polls):
    """Bytewax drives the partition: short interval and backoff, a 500 and a repeat on the way."""
    out = []
    with FakePurpleAir(polls, {1: ("status", 500), 3: ("repeat",)}) as server:
        source = PurpleAirPoller(
            server.base_url,
            interval=0.02,
            backoff=Backoff(base=0.02, cap=0.1),
            max_polls=len(polls) + 1,
        )
        flow = Dataflow("poll")
        op.output("out", op.input("in", flow, source), TestingSink(out))
        run_main(flow)
    assert as_tuples(out) == expected_readings(polls)
    assert len(server.requests) == len(polls) + 2


def test_build_flow_polling_gives_the_anomalies_of_the_same_polls_from_a_file(tmp_path):
    """`source="purpleair"`: 8 sensors over 12 hours polled one by one, with faults on the way,
    give the same anomalies as the file of those polls."""
    sim = simulate.generate(seed=5, n_sensors=8, hours=12)
    path, _ = simulate.write(sim, tmp_path)
    polls = sim.polls
    from_file = []
    sinks = {"events": TestingSink([])}
    sinks = {**sinks, "detector": "hst"}  # the example's detector: many alerts to compare
    run_main(build_flow(str(path), output=TestingSink(from_file), **sinks))
    faults = {5: ("status", 500), 9: ("truncate",), 30: ("repeat",)}
    polled, dead = [], []
    with FakePurpleAir(polls, faults) as server:
        options = {
            "base_url": server.base_url,
            "interval": 0.001,
            "max_polls": len(polls) + 2,
            "backoff": {"base": 0.01, "cap": 0.05},
        }
        flow = build_flow(
            "purpleair",
            purpleair=options,
            output=TestingSink(polled),
            dead_letters=TestingSink(dead),
            **sinks,
        )
        run_main(flow)
    assert len(from_file) >= 4
    key = lambda r: (r["sensor_index"], r["time"])  # noqa: E731
    assert sorted(polled, key=key) == sorted(from_file, key=key)
    assert [d["reason"][:9] for d in dead] == ["not JSON:"]
