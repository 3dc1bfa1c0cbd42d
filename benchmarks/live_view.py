"""The live view on a large PostgreSQL database: how long the page takes to be ready, and each
endpoint's latency, with `--sensors` sensors and `--hours` of 2-minute readings each (25,000
and 24: 18 million readings).

    python -m benchmarks.live_view [--sensors 25000] [--hours 24] [--repeats 20]

The server is the tests' throw-away one (`tests/postgres.py`, fsync off while loading, 256 MB of
shared buffers). The tables are the flow's own (`sinks/postgres.py` creates them with their
keys and indexes; the `incidents` table as `tests/live_view.py` writes it until the flow has one);
the rows are generated in the server (`INSERT ... SELECT` over `generate_series`, a sensor block
at a time, keys and indexes built after), shaped as the flow writes them: every reading's
`values` JSON with position, channels A and B, corrected PM2.5, NowCast and AQI; about 1 in 150
readings flagged (and an alert), 1 in 100 imputed, a gap for 1 sensor in 50, 1 in 500 offline,
2,000 incidents of which a quarter open, and a day of per-minute health rows. Then `VACUUM
ANALYZE`, as autovacuum would do on a live database.

Measured through HTTP against the view served by uvicorn on 127.0.0.1 (the page's own requests:
the page, its script and style, config, sensors, incidents, health), and, when Debian's
chromium is installed, the page in headless chromium: from navigation to the map drawn with
every sensor and the incidents and health shown (`performance.now()` at the first refresh's
end). A sensor's story is timed for random sensors over its last day (every reading, up to 1,000
points) and averaged to 200 points.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
import urllib.request

STEP = 120  # seconds between a sensor's readings
T0 = "2026-04-01T00:00:00Z"


def _readings_sql(first: int, last: int, steps: int) -> str:
    """Readings of sensors first..last-1, `steps` each, generated in the server."""
    return f"""
    INSERT INTO readings
    SELECT s, t, 'scored', score, false, pm * 0.66, pm, pm * 1.1, epa, 70 + (s % 15), hum, 1010,
      aqi,
      jsonb_build_object('latitude', lat, 'longitude', lon, 'humidity', hum,
        'temperature', 70 + (s % 15), 'pressure', 1010, 'pm1.0_cf_1', pm * 0.66,
        'pm2.5_cf_1', pm, 'pm2.5_cf_1_a', pm * 1.03, 'pm2.5_cf_1_b', pm * 0.97,
        'pm10.0_cf_1', pm * 1.1, 'pm2.5_atm', pm, 'pm2.5_epa', epa, 'pm2.5_nowcast', epa,
        'aqi', aqi),
      CASE WHEN (s * 3 + k) % 100 = 0 THEN '["humidity"]' ELSE '[]' END::jsonb,
      '[]'::jsonb,
      CASE WHEN (s + k) % 150 = 0 THEN '{{"flatline": "unchanged for 15 readings"}}'
           ELSE '{{}}' END::jsonb,
      CASE WHEN (s + k) % 150 = 0 THEN '["flatline"]' ELSE '[]' END::jsonb
    FROM (
      SELECT s, k, timestamptz '{T0}' + make_interval(secs => k * {STEP} + s % {STEP}) AS t,
        32 + ((s * 7919) % 10000) / 1000.0 AS lat, -124 + ((s * 104729) % 10000) / 1000.0 AS lon,
        greatest(0.5, 8 + 6 * sin(k / 40.0 + s) + (s % 7)) AS pm,
        greatest(0.5, 7 + 5 * sin(k / 40.0 + s) + (s % 7)) AS epa,
        least(200, greatest(1, 30 + 20 * sin(k / 40.0 + s) + (s % 7) * 4)) AS aqi,
        30 + (s % 40) AS hum, ((s + k) % 97) / 100.0 AS score
      FROM generate_series({first}::bigint, {last - 1}) AS s, generate_series(0, {steps - 1}) AS k
    ) g
    """


def load(url: str, sensors: int, hours: float) -> dict[str, float]:
    """The flow's tables, filled; seconds each part took."""
    import psycopg

    from sinks.postgres import PostgresDialect
    from sinks.tables import TABLES
    from tests.live_view import write_incidents

    took: dict[str, float] = {}
    steps = int(hours * 3600 // STEP)
    dialect = PostgresDialect(url, 60.0)
    conn = dialect.connect()
    for name in ("readings", "anomalies", "events", "dead_letters", "health"):
        dialect.create(conn, TABLES[name])
    conn.execute("SET statement_timeout = 0")
    conn.execute("ALTER TABLE readings DROP CONSTRAINT readings_pkey")
    conn.execute('DROP INDEX "readings_by_time"')
    started = time.perf_counter()
    block = 2500
    for first in range(0, sensors, block):
        conn.execute(_readings_sql(first, min(sensors, first + block), steps))
        done = min(sensors, first + block)
        print(f"  {done * steps:,} readings in {time.perf_counter() - started:.0f} s", flush=True)
    took["readings"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute('ALTER TABLE readings ADD PRIMARY KEY (sensor_index, "time")')
    conn.execute('CREATE INDEX "readings_by_time" ON readings ("time")')
    took["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute(
        "INSERT INTO anomalies SELECT sensor_index, time, "
        "CASE WHEN reasons = '[]' THEN 'anomaly' ELSE 'sensor_fault' END, "
        "CASE WHEN reasons = '[]' THEN '[\"score\"]' ELSE reasons END, score, pm1_0_cf_1, "
        "pm2_5_cf_1, pm10_0_cf_1, pm2_5_epa, temperature, humidity, pressure, aqi, "
        "'{}'::jsonb, imputed FROM readings WHERE reasons <> '[]' OR score > 0.955"
    )
    conn.execute(
        "INSERT INTO events SELECT s, %s::timestamptz + make_interval(secs => 3600 + s %% 120), "
        "'gap', %s::timestamptz + make_interval(secs => 5400 + s %% 120), 1800, 14, 'event' "
        "FROM generate_series(0, %s - 1, 50) AS s",
        (T0, T0, sensors),
    )
    # sensors gone silent: their readings end with an offline event
    conn.execute(
        "DELETE FROM readings WHERE sensor_index %% 500 = 7 AND time > %s::timestamptz + "
        "make_interval(secs => %s)",
        (T0, hours * 1800),
    )
    conn.execute(
        "INSERT INTO events SELECT sensor_index, max(time), 'sensor_offline', NULL, 1800, 14, "
        "'event' FROM readings WHERE sensor_index % 500 = 7 GROUP BY sensor_index"
    )
    conn.execute(
        "INSERT INTO health SELECT m, 'bench', %s / 2, (extract(minute FROM m))::int %% 3, 1, 0, "
        "m, m FROM generate_series(%s::timestamptz, %s::timestamptz + make_interval(secs => %s) "
        "- interval '1 minute', interval '1 minute') AS m",
        (sensors, T0, T0, hours * 3600),
    )
    conn.execute(
        "INSERT INTO dead_letters SELECT 'poll', md5(i::text), 'not JSON', 'x' "
        "FROM generate_series(1, 300) AS i"
    )
    rng = random.Random(7)
    records = []
    for i in range(2000):
        sensor = rng.randrange(sensors)
        start = 1775001600 + rng.randrange(int(hours * 3600))
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        base = {"id": f"sensor:{sensor}:{start}", "kind": "sensor_fault", "started": iso,
                "reasons": ["flatline"], "count": 3, "sensor_index": sensor}  # fmt: skip
        records.append({**base, "state": "open", "time": iso})
        if i % 4:
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 1800))
            records.append({**base, "state": "close", "time": end})
    write_incidents(url, records)
    took["other tables"] = time.perf_counter() - started
    started = time.perf_counter()
    conn.execute("VACUUM ANALYZE")
    took["vacuum analyze"] = time.perf_counter() - started
    conn.close()
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT count(*) FROM readings").fetchone()[0]
        size = c.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
    print(f"  {rows:,} readings, database {size[0]}")
    took["rows"] = rows
    return took


def timed(url: str, repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` GETs of `url` (body read)."""
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    median = statistics.median(ms)
    return f"  {name:<44} median {median:7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def browser_ready(base: str, sensors: int, repeats: int) -> list[float] | None:
    """Milliseconds from navigation to the first refresh drawn, in headless chromium."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    out = []
    try:
        for _ in range(repeats):
            driver.get(base + "/")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                ready = driver.execute_script("return document.body.dataset.ready")
                if ready:
                    break
                time.sleep(0.02)
            markers = driver.execute_script("return document.getElementById('map').dataset.markers")
            assert markers == str(sensors), markers
            out.append(float(ready))
    finally:
        driver.quit()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensors", type=int, default=25000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    from tests.live_view import served
    from tests.postgres import PostgresServer, server_bin
    from viewer.app import create_app
    from viewer.queries import Store

    bin_dir = server_bin()
    if bin_dir is None:
        print("no PostgreSQL server installed: nothing measured")
        return 1
    with PostgresServer(bin_dir) as server:
        server.stop()
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "shared_buffers = 256MB\nmaintenance_work_mem = 512MB\n"
                "max_wal_size = 8GB\nwal_level = minimal\nmax_wal_senders = 0\n"
            )
        server.start()
        print(f"loading {args.sensors:,} sensors x {args.hours:g} h of 2-minute readings")
        took = load(server.url, args.sensors, args.hours)
        for part, seconds in took.items():
            if part != "rows":
                print(f"  {part}: {seconds:.0f} s")
        store = Store(server.url)
        query = []
        for _ in range(max(3, args.repeats // 4)):
            started = time.perf_counter()
            store.sensors()
            query.append((time.perf_counter() - started) * 1000)
        print("the map's query (every sensor's newest reading; the view runs it once per refresh")
        print("interval in the background, whatever the number of pages open):")
        print(summary("Store.sensors()", query))
        with served(create_app(store, poll=5)) as base:
            print("latency through HTTP (uvicorn, 1 client):")
            page = sum(
                statistics.median(timed(base + path, 3))
                for path in ("/", "/static/app.js", "/static/style.css", "/api/config")
            )
            sensors_ms = timed(base + "/api/sensors", args.repeats)  # the first computes it
            incidents_ms = timed(base + "/api/incidents", args.repeats)
            health_ms = timed(base + "/api/health", args.repeats)
            print(summary("the page, script, style, config (together)", [page]))
            print(summary("/api/sensors, the first after the start", sensors_ms[:1]))
            print(summary("/api/sensors (every sensor)", sensors_ms[1:]))
            print(summary("/api/incidents", incidents_ms))
            print(summary("/api/health", health_ms))
            ready = page + statistics.median(sensors_ms[1:]) + max(
                statistics.median(incidents_ms), statistics.median(health_ms)
            )
            print(f"  page's requests, sensors then the others: {ready:.0f} ms")
            rng = random.Random(1)
            day, aggregated = [], []
            for _ in range(args.repeats):
                sensor = rng.randrange(args.sensors)
                day += timed(f"{base}/api/sensors/{sensor}", 1)
                aggregated += timed(f"{base}/api/sensors/{sensor}?points=200", 1)
            print(summary("a sensor's story, its last day (every reading)", day))
            print(summary("a sensor's story, its last day in 200 points", aggregated))
            browser = browser_ready(base, args.sensors, max(3, args.repeats // 5))
            if browser is None:
                print("  no chromium: the page in a browser not measured")
            else:
                print(summary("page ready in headless chromium", browser))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
