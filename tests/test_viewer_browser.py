"""The live view in a real browser: Debian's headless chromium (driven by selenium through its
chromedriver) opens the page over a database that a real flow run wrote from the shipped polls,
and finds the markers in their AQI colours, the open incidents, a sensor's chart, and the page
updating by itself when the flow writes more.

The expected colours come from the US EPA's AQI category table written out here, not from the
view's code. Screenshots of each view go to $LIVE_VIEW_SHOTS (docs/live-view/ was made so)."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.live_view import (
    SHIPPED,
    flow_database,
    polls_with_bad_lines,
    rows,
    served,
    write_incidents,
)
from viewer.app import create_app
from viewer.queries import Store

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)",
)

#: US EPA AQI categories: (lowest AQI, RGB of the category's colour).
EPA_COLOURS = [
    (0, (0, 228, 0)),
    (51, (255, 255, 0)),
    (101, (255, 126, 0)),
    (151, (255, 0, 0)),
    (201, (143, 63, 151)),
    (301, (126, 0, 35)),
]


#: US EPA PM2.5 breakpoints (µg/m³, 2024 revision) → AQI, for a reading the flow gave no AQI
#: (a sensor's first reading has no NowCast yet).
EPA_PM25 = [
    (0.0, 9.0, 0, 50), (9.1, 35.4, 51, 100), (35.5, 55.4, 101, 150), (55.5, 125.4, 151, 200),
    (125.5, 225.4, 201, 300), (225.5, 325.4, 301, 500),
]  # fmt: skip


def aqi_of_pm(pm: float) -> float:
    c = int(pm * 10) / 10
    for c_lo, c_hi, i_lo, i_hi in EPA_PM25:
        if c <= c_hi:
            return round((i_hi - i_lo) / (c_hi - c_lo) * (max(c, c_lo) - c_lo) + i_lo)
    return 500


def epa_colour(aqi: float) -> tuple[int, int, int]:
    return [rgb for low, rgb in EPA_COLOURS if round(aqi) >= low][-1]


def wait(condition, seconds: float = 8.0, what: str = ""):
    """Poll `condition` until it returns something true, for at most `seconds` (a list the
    page redrew meanwhile is looked at again)."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while True:
        try:
            value = condition()
        except StaleElementReferenceException:  # the page redrew that list: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("LIVE_VIEW_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    """The flow's database from the shipped polls, the view over it (refreshing every 0.5 s),
    and a headless chromium on the page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'results.db'}"
    run = flow_database(url, polls_with_bad_lines(folder))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1400,1000", "--force-device-scale-factor=1", "--hide-scrollbars",
    ):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(20)
    try:
        with served(create_app(Store(url), poll=0.5)) as base:
            driver.get(base + "/")
            yield driver, url, run, folder
    finally:
        driver.quit()


def markers(driver) -> dict[int, dict]:
    """Each sensor's marker: where the page drew it, and the pixel at its centre."""
    found = driver.execute_script(
        """
        const canvas = document.getElementById('map');
        const ctx = canvas.getContext('2d');
        const out = {};
        for (const s of window.viewer.state.sensors) {
          const p = window.viewer.project(s.sensor_index);
          if (!p) continue;
          const px = ctx.getImageData(Math.round(p[0]), Math.round(p[1]), 1, 1).data;
          out[s.sensor_index] = {x: p[0], y: p[1], rgb: [px[0], px[1], px[2]],
                                 offline: s.offline, width: canvas.clientWidth,
                                 height: canvas.clientHeight};
        }
        return out;
        """
    )
    return {int(k): v for k, v in found.items()}


def colours_match(found: dict, aqi: dict[int, float]) -> int:
    """How many markers that stand apart (no other within 24 px, the reach of its marks) show
    their AQI's colour; asserts none shows another."""
    matched = 0
    for index, m in found.items():
        near = [
            o
            for j, o in found.items()
            if j != index and max(abs(o["x"] - m["x"]), abs(o["y"] - m["y"])) < 24
        ]
        inside = 0 <= m["x"] < m["width"] and 0 <= m["y"] < m["height"]
        if near or not inside or m["offline"] or aqi.get(index) is None:
            continue
        assert tuple(m["rgb"]) == epa_colour(aqi[index]), (index, aqi[index], m["rgb"])
        matched += 1
    return matched


def newest_aqi(url: str) -> dict[int, float | None]:
    """Each sensor's newest AQI (the flow's, else of its corrected PM2.5), from plain SQL."""
    found = rows(
        url,
        "SELECT r.sensor_index, r.aqi, r.pm2_5_epa FROM readings r WHERE r.time = (SELECT "
        "max(time) FROM readings x WHERE x.sensor_index = r.sensor_index AND x.placeholder = 0)",
    )
    return {
        r["sensor_index"]: r["aqi"] if r["aqi"] is not None else (
            None if r["pm2_5_epa"] is None else aqi_of_pm(r["pm2_5_epa"])
        )
        for r in found
    }  # fmt: skip


def test_the_map_shows_every_sensor_in_its_aqi_colour(view, shots):
    driver, url, _run, _ = view
    canvas = driver.find_element("id", "map")
    wait(lambda: canvas.get_attribute("data-markers") == "60", what="60 markers")
    assert canvas.get_attribute("data-drawn") == "60"
    assert colours_match(markers(driver), newest_aqi(url)) >= 20
    assert "4 fault" in driver.find_element("id", "map-summary").text
    driver.find_element("id", "map-view").screenshot(str(shots / "map.png"))


def test_the_open_incidents_and_a_sensors_story(view, shots):
    driver, url, run, _ = view
    closed = {r["id"] for r in run.incidents if r["state"] == "close"}
    opened = sorted(
        (r for r in run.incidents if r["state"] == "open" and r["id"] not in closed),
        key=lambda r: r["started"],
        reverse=True,
    )
    items = wait(
        lambda: driver.find_elements("css selector", "#incidents li[data-id]"), what="incidents"
    )
    assert [li.get_attribute("data-id") for li in items] == [r["id"] for r in opened]
    assert "out_of_range" in items[0].text and str(opened[0]["sensor_index"]) in items[0].text
    driver.find_element("id", "incidents-view").screenshot(str(shots / "incidents.png"))
    items[0].click()
    sensor = opened[0]["sensor_index"]
    chart = driver.find_element("id", "pm-chart")
    wait(lambda: chart.get_attribute("data-points") not in (None, "", "0"), what="the chart")
    assert driver.find_element("id", "story-title").text == f"Sensor {sensor}"
    last = max(r["time"] for r in rows(url, "SELECT time FROM readings WHERE sensor_index = ?",
                                       (sensor,)))  # fmt: skip
    when = datetime.strptime(last, "%Y-%m-%dT%H:%M:%SZ") - timedelta(days=1)
    start = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    day = rows(
        url,
        "SELECT time, reasons, imputed FROM readings WHERE sensor_index = ? AND time >= ? "
        "AND time <= ?",
        (sensor, start, last),
    )
    assert int(chart.get_attribute("data-points")) == len(day)
    assert int(chart.get_attribute("data-flagged")) == sum(1 for r in day if r["reasons"])
    assert int(chart.get_attribute("data-imputed")) == sum(1 for r in day if r["imputed"])
    # the chart is drawn: the cleaned PM2.5's blue is on the canvas
    blue = driver.execute_script(
        """const c = document.getElementById('pm-chart'), d = c.getContext('2d')
             .getImageData(0, 0, c.width, c.height).data; let n = 0;
           for (let i = 0; i < d.length; i += 4)
             if (d[i] === 0x1f && d[i + 1] === 0x4e && d[i + 2] === 0x9c) n++;
           return n;"""
    )
    assert blue > 200
    flagged = driver.find_elements("css selector", "#flagged li")
    assert any("out_of_range" in li.text for li in flagged)
    driver.find_element("id", "story-view").screenshot(str(shots / "sensor.png"))


def test_an_area_incident_appears_first_and_rings_its_sensors(view):
    driver, url, _run, _ = view
    sensors = [17128, 25394, 27606]
    area = {
        "id": "area:12:34:1775087000", "state": "open", "kind": "pollution_event",
        "time": "2026-04-01T23:58:00Z", "started": "2026-04-01T23:58:00Z",
        "reasons": ["area_event"], "count": 2, "area": "12:34", "sensors": sensors,
    }  # fmt: skip
    write_incidents(url, [area])  # as the flow's incident record of an area
    first = wait(
        lambda: (
            (items := driver.find_elements("css selector", "#incidents li[data-id]"))
            and items[0].get_attribute("data-id") == area["id"]
            and items[0]
        ),
        what="the area's incident first",
    )
    assert "area 12:34 · 3 sensors" in first.text and "area_event" in first.text
    first.click()
    buttons = wait(lambda: driver.find_elements("css selector", "#area button"), what="area")
    assert [b.text for b in buttons] == [f"sensor {s}" for s in sensors]
    assert sorted(driver.execute_script("return [...window.viewer.state.highlight]")) == sensors
    found = markers(driver)
    canvas = driver.find_element("id", "map")
    width, height = canvas.size["width"], canvas.size["height"]
    assert all(0 <= found[s]["x"] <= width and 0 <= found[s]["y"] <= height for s in sensors)
    buttons[1].click()
    wait(lambda: driver.find_element("id", "story-title").text == "Sensor 25394", what="story")


def test_the_page_updates_when_the_flow_writes(view, shots):
    driver, url, _run, folder = view
    before = int(driver.find_element("tag name", "body").get_attribute("data-refreshes") or 0)
    wait(lambda: int(driver.find_element("tag name", "body").get_attribute("data-refreshes"))
         > before, what="a refresh")  # fmt: skip
    readings_before = driver.find_element("id", "health-stats").get_attribute("data-readings")
    # a later poll, every sensor at 150 µg/m³, written by a second run of the flow
    last = json.loads(SHIPPED.read_text().splitlines()[-1])
    pm = last["fields"].index("pm2.5_cf_1")
    seen = last["fields"].index("last_seen")
    for row in last["data"]:
        row[pm] = 150.0
        row[seen] += 600
    last["time_stamp"] += 600
    last["data_time_stamp"] += 600
    later = folder / "later.jsonl"
    later.write_text(json.dumps(last) + "\n")
    flow_database(url, later)
    wait(
        lambda: "2026-04-02 00:0" in driver.find_element("id", "map-summary").text,
        what="the newest reading on the page",
    )
    wait(
        lambda: (
            driver.find_element("id", "health-stats").get_attribute("data-readings")
            != readings_before
        ),
        what="the health counts",
    )
    driver.find_element("id", "show-all").click()  # the whole map again
    aqi = newest_aqi(url)
    assert min(v for v in aqi.values() if v is not None) > 150  # unhealthy or worse
    assert colours_match(markers(driver), aqi) >= 20
    driver.find_element("id", "health-view").screenshot(str(shots / "health.png"))
    driver.set_window_size(1400, 2300)  # the whole page, for the how-to
    driver.execute_script("window.scrollTo(0, 0)")
    wait(lambda: driver.find_element("id", "map").size["width"] > 800, what="the resize")
    time.sleep(0.5)
    driver.save_screenshot(str(shots / "page.png"))
