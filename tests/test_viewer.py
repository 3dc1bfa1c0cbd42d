"""The live view's endpoints over a database a real flow run wrote (SQLite and a real PostgreSQL):
what they answer is checked against the shipped polls file itself, plain SQL and numpy; bad
parameters are 400s, a token guards /api/, no file outside the assets is served, and the flow's
per-minute health rows add up to its totals."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.live_view import SHIPPED, flow_database, polls_with_bad_lines, rows, served
from viewer.app import create_app
from viewer.queries import Store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def flow_db(request, tmp_path_factory):
    """A database the flow wrote (every output) from the shipped polls, and its run."""
    folder = tmp_path_factory.mktemp("view")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'results.db'}"
    else:
        import psycopg

        server = request.getfixturevalue("postgres_server")
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS view_test")
            conn.execute("CREATE DATABASE view_test")
        url = server.url_for("view_test")
    run = flow_database(url, polls_with_bad_lines(folder))
    return url, run


@pytest.fixture(scope="module")
def base(flow_db):
    with served(create_app(Store(flow_db[0]), poll=1.0)) as url:
        yield url


def get(url: str, headers: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def newest_positions() -> dict[int, tuple[float, float]]:
    """Each sensor's position in its newest row of the polls file (the oracle of the map)."""
    found: dict[int, tuple[int, float, float]] = {}
    for line in SHIPPED.read_text().splitlines():
        poll = json.loads(line)
        names = poll["fields"]
        for row in poll["data"]:
            r = dict(zip(names, row, strict=True))
            seen = found.get(r["sensor_index"])
            if seen is None or r["last_seen"] >= seen[0]:
                found[r["sensor_index"]] = (r["last_seen"], r["latitude"], r["longitude"])
    return {k: (lat, lon) for k, (_t, lat, lon) in found.items()}


def test_the_map_has_every_sensor_where_the_polls_put_it(base, flow_db):
    status, body = get(base + "/api/sensors")
    assert status == 200
    columns = body["columns"]
    sensors = {r[0]: dict(zip(columns, r, strict=True)) for r in body["sensors"]}
    want = newest_positions()
    assert sensors.keys() == want.keys() and len(want) == 60
    for index, (lat, lon) in want.items():
        assert (sensors[index]["lat"], sensors[index]["lon"]) == pytest.approx((lat, lon))
    # the corrected PM2.5 and AQI are each sensor's newest row's (plain SQL)
    url = flow_db[0]
    for index in list(want)[:5]:
        (last,) = rows(
            url,
            "SELECT time, pm2_5_epa, aqi FROM readings WHERE sensor_index = ? AND NOT "
            "(placeholder = TRUE) ORDER BY time DESC LIMIT 1",
            (index,),
        )
        got = sensors[index]
        assert (got["time"], got["pm2_5_epa"], got["aqi"]) == (
            last["time"], last["pm2_5_epa"], last["aqi"]
        )  # fmt: skip
    # sensors with a fault alert in the hour before the newest reading are marked as faults
    faults = {
        r["sensor_index"]
        for r in rows(url, "SELECT sensor_index, time FROM anomalies WHERE kind = 'sensor_fault'")
        if r["time"] > "2026-04-01T22:58:00Z"
    }
    assert body["newest"] == "2026-04-01T23:58:00Z"
    assert faults and faults == {i for i, s in sensors.items() if "sensor_fault" in s["kinds"]}


def test_open_incidents_newest_first(base, flow_db):
    records = flow_db[1].incidents
    closed = {r["id"] for r in records if r["state"] == "close"}
    opened = [r for r in records if r["state"] == "open" and r["id"] not in closed]
    assert opened, "the shipped polls leave some incidents open"
    status, body = get(base + "/api/incidents")
    assert status == 200 and body["available"] and body["open"] == len(opened)
    got = body["incidents"]
    assert {i["id"] for i in got} == {r["id"] for r in opened}
    assert [i["started"] for i in got] == sorted((r["started"] for r in opened), reverse=True)
    assert all(i["reasons"] and i["sensor_index"] is not None for i in got)
    status, body = get(base + "/api/incidents?limit=1")
    assert len(body["incidents"]) == 1 and body["open"] == len(opened)


def test_a_sensors_story_is_its_rows_or_their_bucket_averages(base, flow_db):
    url = flow_db[0]
    sensor = flow_db[1].incidents[0]["sensor_index"]
    start, end = "2026-04-01T00:00:00Z", "2026-04-01T12:00:00Z"
    raw = rows(
        url,
        "SELECT time, pm2_5_cf_1, pm2_5_epa, aqi, reasons, imputed FROM readings "
        "WHERE sensor_index = ? AND time >= ? AND time <= ? ORDER BY time",
        (sensor, start, end),
    )
    assert len(raw) > 300
    status, story = get(f"{base}/api/sensors/{sensor}?start={start}&end={end}&points=5000")
    assert status == 200 and story["readings"] == len(raw) and story["bucket_seconds"] == 0
    assert [r["time"] for r in story["series"]] == [r["time"] for r in raw]
    assert [r["pm2_5_epa"] for r in story["series"]] == pytest.approx([r["pm2_5_epa"] for r in raw])
    assert [r["imputed"] for r in story["series"]] == [int(bool(r["imputed"])) for r in raw]
    assert [f["time"] for f in story["flagged"]] == [r["time"] for r in raw if r["reasons"]]
    # 60 points over 12 hours: buckets of about 12 minutes, each the mean of its rows (numpy)
    status, story = get(f"{base}/api/sensors/{sensor}?start={start}&end={end}&points=60")
    width = story["bucket_seconds"]
    assert status == 200 and 720 <= width <= 721 and 55 <= len(story["series"]) <= 60
    origin = np.datetime64(start.removesuffix("Z"), "s").astype(np.int64)
    seconds = np.array(
        [np.datetime64(r["time"].removesuffix("Z"), "s").astype(np.int64) for r in raw]
    )
    keys = (seconds - origin) // width
    values = np.array([np.nan if r["pm2_5_cf_1"] is None else r["pm2_5_cf_1"] for r in raw])
    want = [np.nanmean(values[keys == k]) for k in np.unique(keys)]
    assert [b["pm2_5_cf_1"] for b in story["series"]] == pytest.approx(want)
    assert sum(b["flagged"] for b in story["series"]) == sum(1 for r in raw if r["reasons"])
    # the default span: the day before the sensor's newest reading
    status, story = get(f"{base}/api/sensors/{sensor}")
    assert status == 200 and story["end"] == max(r["time"] for r in rows(
        url, "SELECT time FROM readings WHERE sensor_index = ?", (sensor,)
    ))  # fmt: skip
    assert any(i["id"] == flow_db[1].incidents[0]["id"] for i in story["incidents"])


def test_health_rows_add_up_to_the_flows_totals(base, flow_db):
    status, health = get(base + "/api/health?minutes=600")
    assert status == 200
    totals = flow_db[1].totals
    assert health["totals"]["readings"] == totals["readings"]
    assert health["totals"]["dead_letters"] == totals["dead_letters"] == 2
    assert health["totals"]["gaps"] == totals["events:gap"]
    assert health["totals"]["offline"] == totals["events:sensor_offline"]
    assert health["totals"]["last_poll"] == "2026-04-01T23:58:00Z"
    assert sum(m["readings"] for m in health["minutes"]) == totals["readings"]
    assert sum(d["n"] for d in health["dead_letter_reasons"]) == 2


BAD = [
    "/api/sensors/abc",
    "/api/sensors/-1",
    "/api/sensors/99999999999999999999999",
    "/api/sensors/17128?start=yesterday",
    "/api/sensors/17128?end=2026-13-01",
    "/api/sensors/17128?start=2026-04-02T00:00:00Z&end=2026-04-01T00:00:00Z",
    "/api/sensors/17128?points=1",
    "/api/sensors/17128?points=lots",
    "/api/sensors/17128?points=100000",
    "/api/sensors/17128?start=99999-01-01",
    "/api/sensors/17128?start=%00",
    "/api/incidents?limit=0",
    "/api/incidents?limit=1e9",
    "/api/health?minutes=-5",
    "/api/health?minutes=%F0%9F%92%A9",
]


@pytest.mark.parametrize("path", BAD)
def test_bad_parameters_are_400s(base, path):
    status, body = get(base + path)
    assert status == 400 and body["error"], (path, body)


def test_an_unknown_sensor_is_404(base):
    status, body = get(base + "/api/sensors/123")
    assert status == 404 and "123" in body["error"]


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """A GET with the path sent as written (no client-side normalisation)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fsinks/tables.py",
        "/static/....//app.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/..\\app.py",
        "/../pyproject.toml",
        "/static/../../pyproject.toml",
    ],
)
def test_no_file_outside_the_assets(base, path):
    status, body = raw_get(base, path)
    assert status in (400, 404), (path, status)
    assert b"import" not in body and b"root:" not in body and b"[project]" not in body


def test_the_assets_and_the_page_are_served(base):
    for path, marker in [("/", b"live view"), ("/static/app.js", b"openSensor")]:
        status, body = raw_get(base, path)
        assert status == 200 and marker in body


def test_a_token_guards_the_api(flow_db):
    with served(create_app(Store(flow_db[0]), token="s3cret")) as url:
        assert get(url + "/api/sensors")[0] == 401
        assert get(url + "/api/sensors", {"Authorization": "Bearer wrong"})[0] == 401
        assert get(url + "/api/sensors", {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(url + "/api/health?token=s3cret")[0] == 200
        assert raw_get(url, "/")[0] == 200  # the page itself holds no data


def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "viewer", *args], capture_output=True, text=True, timeout=60
    )


def test_a_wide_bind_needs_a_token_and_a_bad_database_is_one_line(tmp_path):
    wide = command("--db", str(tmp_path / "x.db"), "--host", "0.0.0.0")
    assert wide.returncode == 2 and "--token" in wide.stderr
    assert len(wide.stderr.strip().splitlines()) == 1
    missing = command("--db", str(tmp_path / "missing.db"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    neither = command("--db", str(tmp_path / "results.jsonl"))
    assert neither.returncode == 2 and "names no database" in neither.stderr
