"""The simulator's quality-control scenario: two laser channels, channel faults, smoke plumes.

A PurpleAir PA-II has two Plantower counters, A and B; the API gives each channel's PM
(`pm2.5_cf_1_a`, `pm2.5_cf_1_b`, ...) and their mean (`pm2.5_cf_1`). Here each channel reads
the sensor's true PM times its own gain (per sensor, ±3 %) and its own noise (±4 % a reading),
and the combined fields are the channels' mean, as PurpleAir's are. Two channel faults, on one
channel (A or B at random) of one sensor:

* `channel_high`: the channel reads 2–4× the air plus 10–40 µg/m³ (a degraded laser, a spider
  web), 1–6 h;
* `channel_dead`: the channel reads 0.0 on every field, 1–4 h.

A smoke plume is a regional pollution event, not a fault: a Gaussian blob (σ 15–30 km) that
drifts across the region at 5–15 km/h for 3–6 h (an hour's ramp up and down), adding up to
80–250 µg/m³ of PM2.5 (CF=1) at its centre to every sensor it covers, on both channels alike.
Each sensor's stretch of readings with at least `SMOKE_LABEL_MIN` of added PM2.5 is labelled
`smoke`: an event to be told apart from the faults.

Every draw comes from the generator passed in (the simulator gives these two concerns their own
child streams), so a run without them is unchanged, and one with them is deterministic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Channel fields: (combined field, channel A, channel B).
CHANNEL_FIELDS: tuple[str, ...] = ("pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "pm2.5_atm")
CHANNEL_GAIN_SD = 0.03
CHANNEL_NOISE_SD = 0.04
HIGH_GAIN = (2.0, 4.0)
HIGH_OFFSET = (10.0, 40.0)  # µg/m³
#: (name, min readings, max readings, episodes in a default-sized run).
CHANNEL_FAULTS: tuple[tuple[str, int, int, int], ...] = (
    ("channel_high", 30, 180, 10),
    ("channel_dead", 30, 120, 8),
)
SMOKE_PEAK = (80.0, 250.0)  # µg/m³ of pm2.5_cf_1 added at the plume's centre
SMOKE_SIGMA_KM = (15.0, 30.0)
SMOKE_HOURS = (3.0, 6.0)
SMOKE_SPEED_KMH = (5.0, 15.0)
SMOKE_RAMP_S = 3600.0
#: A sensor is inside the event while the plume adds at least this much PM2.5 (µg/m³).
SMOKE_LABEL_MIN = 10.0
KM_PER_DEGREE = 111.2


@dataclass(frozen=True)
class Plume:
    """One smoke plume: start, length, centre path and size."""

    start: int  # epoch seconds
    seconds: float
    lat: float  # centre at the start
    lon: float
    heading: float  # radians, 0 = east
    speed_kmh: float
    sigma_km: float
    peak: float  # µg/m³ of pm2.5_cf_1 at the centre


def channel_names(name: str) -> tuple[str, str]:
    return name + "_a", name + "_b"


def split_channels(
    rng: np.random.Generator, pm: dict[str, np.ndarray], cf1_to_atm: Callable
) -> dict[str, np.ndarray]:
    """The PM fields with channels A and B (gain and noise each); combined = their mean.

    `pm` holds the true CF=1 fields (and `pm2.5_atm`); the ATM channels are derived from each
    channel's `pm2.5_cf_1` with `cf1_to_atm`, as the combined one was."""
    shape = pm["pm2.5_cf_1"].shape
    gains = 1.0 + rng.normal(0.0, CHANNEL_GAIN_SD, (2, shape[1]))
    noise = np.exp(rng.normal(0.0, CHANNEL_NOISE_SD, (2, *shape)))
    out: dict[str, np.ndarray] = {}
    for name in CHANNEL_FIELDS:
        if name == "pm2.5_atm":
            continue
        a, b = (pm[name] * gains[i] * noise[i] for i in range(2))
        out[name], (out[name + "_a"], out[name + "_b"]) = 0.5 * (a + b), (a, b)
    out["pm2.5_atm_a"] = cf1_to_atm(out["pm2.5_cf_1_a"])
    out["pm2.5_atm_b"] = cf1_to_atm(out["pm2.5_cf_1_b"])
    out["pm2.5_atm"] = 0.5 * (out["pm2.5_atm_a"] + out["pm2.5_atm_b"])
    return out


def apply_channel_fault(
    rng: np.random.Generator, pm: dict[str, np.ndarray], kind: str, rows: slice, sensor: int
) -> None:
    """Break one channel (A or B, drawn) of one sensor over `rows`; the combined fields follow
    (they are the channels' mean, as PurpleAir computes them)."""
    suffix = "_a" if rng.random() < 0.5 else "_b"
    gain, offset = rng.uniform(*HIGH_GAIN), rng.uniform(*HIGH_OFFSET)
    for name in CHANNEL_FIELDS:
        channel = pm[name + suffix]
        if kind == "channel_dead":
            channel[rows, sensor] = 0.0
        else:
            channel[rows, sensor] = channel[rows, sensor] * gain + offset
        pm[name][rows, sensor] = 0.5 * (
            pm[name + "_a"][rows, sensor] + pm[name + "_b"][rows, sensor]
        )


def draw_plumes(
    rng: np.random.Generator,
    n: int,
    first_stamp: int,
    last_stamp: int,
    lat_range: tuple[float, float],
    lon_range: tuple[float, float],
) -> list[Plume]:
    """`n` plumes, each wholly inside [first_stamp, last_stamp] when the run is long enough."""
    plumes = []
    for _ in range(n):
        seconds = rng.uniform(*SMOKE_HOURS) * 3600.0
        room = max(last_stamp - first_stamp - seconds, 0.0)
        plumes.append(
            Plume(
                start=int(first_stamp + rng.uniform(0.0, room)),
                seconds=seconds,
                lat=rng.uniform(*lat_range),
                lon=rng.uniform(*lon_range),
                heading=rng.uniform(0.0, 2 * math.pi),
                speed_kmh=rng.uniform(*SMOKE_SPEED_KMH),
                sigma_km=rng.uniform(*SMOKE_SIGMA_KM),
                peak=rng.uniform(*SMOKE_PEAK),
            )
        )
    return plumes


def smoke_pm25(
    plumes: list[Plume], last_seen: np.ndarray, latitude: np.ndarray, longitude: np.ndarray
) -> np.ndarray:
    """PM2.5 (CF=1, µg/m³) the plumes add to each reading, (polls × sensors)."""
    added = np.zeros(last_seen.shape)
    cos_lat = math.cos(math.radians(float(np.mean(latitude))))
    for p in plumes:
        t = (last_seen - p.start).astype(float)
        envelope = np.clip(np.minimum(t, p.seconds - t) / SMOKE_RAMP_S, 0.0, 1.0)
        moved = p.speed_kmh * np.clip(t, 0.0, p.seconds) / 3600.0
        centre_x = moved * math.cos(p.heading)  # km east of the start
        centre_y = moved * math.sin(p.heading)
        x = (longitude - p.lon) * KM_PER_DEGREE * cos_lat
        y = (latitude - p.lat) * KM_PER_DEGREE
        d2 = (x - centre_x) ** 2 + (y - centre_y) ** 2
        added += p.peak * envelope * np.exp(-d2 / (2 * p.sigma_km**2))
    return added


def smoke_runs(added: np.ndarray) -> list[tuple[int, int, int]]:
    """`(sensor, first poll, last poll)` of each run of readings with added PM2.5 at least
    `SMOKE_LABEL_MIN`."""
    runs = []
    inside = added >= SMOKE_LABEL_MIN
    for sensor in range(added.shape[1]):
        column = np.concatenate([[False], inside[:, sensor], [False]])
        edges = np.flatnonzero(column[1:] != column[:-1])
        for first, stop in zip(edges[::2], edges[1::2], strict=True):
            runs.append((sensor, int(first), int(stop) - 1))
    return runs


def real_layout(
    path: str | Path,
    n_sensors: int,
    seed: int,
    lat_range: tuple[float, float],
    lon_range: tuple[float, float],
    max_level: float = 40.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latitude, longitude, PM1 baseline) of `n_sensors` real sensors of a PurpleAir payload
    inside the region, drawn with `seed`: their positions, and their `pm1.0_cf_1` at that
    moment as the baseline (at least 0.5, at most `max_level`; a sensor without one or above
    `max_level` is not drawn: its level is a fault or an event of that day, not a baseline)."""
    doc = json.loads(Path(path).read_text())
    fields = doc["fields"]
    lat, lon, pm = (fields.index(n) for n in ("latitude", "longitude", "pm1.0_cf_1"))
    rows = [
        (row[lat], row[lon], row[pm])
        for row in doc["data"]
        if row[lat] is not None
        and row[lon] is not None
        and row[pm] is not None
        and lat_range[0] <= row[lat] <= lat_range[1]
        and lon_range[0] <= row[lon] <= lon_range[1]
        and row[pm] <= max_level
    ]
    if len(rows) < n_sensors:
        raise ValueError(f"{path}: {len(rows)} sensors in the region, {n_sensors} wanted")
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), n_sensors, replace=False))
    chosen = np.array([rows[i] for i in pick], dtype=float)
    return chosen[:, 0], chosen[:, 1], np.clip(chosen[:, 2], 0.5, max_level)
