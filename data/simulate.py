"""Simulate PurpleAir ``GET /v1/sensors`` polls with labelled faults.

The project cleans and screens live PurpleAir streams, but real streams come
without ground truth. This module produces a realistic stand-in that has it:

* ``polls.jsonl`` -- one JSON line per poll, each exactly shaped like a
  PurpleAir API v1 ``GET /v1/sensors`` response (``fields`` + ``data`` rows),
  one poll every 120 s (PurpleAir's 2-minute real-time averages);
* ``labels.csv`` -- one row per injected fault episode (``spike``, ``stuck``,
  ``drift``, ``dropout``) with the inclusive ``last_seen`` range it covers.

With ``channels=True`` each PM field also comes per laser channel (``_a``, ``_b``) and two
channel faults join (``channel_high``, ``channel_dead``); ``smoke=N`` adds N regional smoke
plumes, labelled ``smoke`` per sensor (events, not faults); ``layout`` places the sensors (and
sets their PM levels), e.g. at real sensors' positions (``data/qc.py``). The defaults produce
the shipped files unchanged.

The signal model is deliberately simple but shaped like real data: per-sensor
diurnal cycles (PM high at night and in the morning, low in the afternoon;
temperature peaking mid-afternoon with humidity moving opposite), slow AR(1)
wander shared by the region and per sensor, the usual PM channel ratios and
the CF=1 -> ATM correction curve, and missing values at the rates seen in
practice (a failed BME280 chip nulls humidity, temperature and pressure
together; rarely the PM channels are all null).

Everything is drawn from ``numpy.random.default_rng(seed)`` and computed as
(polls x sensors) arrays, so the same arguments give byte-identical files and
a million readings take seconds. Regenerate the shipped files from the repo
root with::

    python -m data.simulate --seed 7 --sensors 60 --hours 24 --out data/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from data import qc
from sources.times import iso_time

# --- The payload -----------------------------------------------------------

API_VERSION = "V1.0.14-0.0.58"
FIRMWARE_DEFAULT_VERSION = "7.02"
MAX_AGE_S = 604800
RESPONSE_DELAY_S = 3  # time_stamp - data_time_stamp of every response
FIELDS: tuple[str, ...] = (
    "sensor_index",
    "last_seen",
    "latitude",
    "longitude",
    "humidity",
    "temperature",
    "pressure",
    "pm1.0_cf_1",
    "pm2.5_cf_1",
    "pm10.0_cf_1",
    "pm2.5_atm",
)
INT_FIELDS = frozenset({"sensor_index", "last_seen", "humidity", "temperature"})
WEATHER_FIELDS: tuple[str, ...] = ("humidity", "temperature", "pressure")
PM_FIELDS: tuple[str, ...] = ("pm1.0_cf_1", "pm2.5_cf_1", "pm10.0_cf_1", "pm2.5_atm")
#: With `channels=True`, after `FIELDS`: each PM field per laser channel.
CHANNEL_FIELDS: tuple[str, ...] = tuple(
    f"{name}{suffix}" for name in PM_FIELDS for suffix in ("_a", "_b")
)

# --- Defaults and timing ---------------------------------------------------

DEFAULT_SEED = 7
DEFAULT_SENSORS = 60
DEFAULT_HOURS = 24.0
DEFAULT_START = 1775001600  # 2026-04-01T00:00:00Z
POLL_INTERVAL_S = 120
MAX_JITTER_S = 30  # last_seen = data_time_stamp - (0..30 s)

# --- Region: the San Francisco Bay Area, on Pacific Daylight Time in April --

LAT_RANGE = (37.25, 38.05)
LON_RANGE = (-122.55, -121.75)
UTC_OFFSET_S = -7 * 3600

# --- Faults ----------------------------------------------------------------

WARMUP_S = 3 * 3600  # no fault reading has last_seen earlier than start + 3 h
# First poll whose readings are all past the warm-up, whatever their jitter.
FIRST_FAULT_POLL = math.ceil((WARMUP_S + MAX_JITTER_S) / POLL_INTERVAL_S)
FAULT_GAP_POLLS = 15  # at least 30 min of normal readings between two faults
PLACEMENT_TRIES = 200


@dataclass(frozen=True)
class FaultKind:
    """One kind of injected fault: its length range and default-run count."""

    name: str
    min_readings: int
    max_readings: int
    per_default_run: int  # episodes in the default run (60 sensors x 24 h)


# Longest first: they are the hardest to fit, so they are placed first.
FAULT_KINDS: tuple[FaultKind, ...] = (
    FaultKind("drift", 60, 180, 8),  # 2-6 h linear ramp
    FaultKind("stuck", 30, 90, 8),  # 1-3 h of one repeated value
    FaultKind("dropout", 5, 60, 10),  # 10 min - 2 h absent from the polls
    FaultKind("spike", 1, 3, 40),  # 1-3 readings far above normal
)
SPIKE_RANGE = (150.0, 900.0)  # added to pm1.0_cf_1, ug/m3
DRIFT_PEAK_RANGE = (50.0, 300.0)  # added to pm1.0_cf_1 at the ramp's end, ug/m3

# --- Missing values: (isolated rate, run-start rate, run length range) -----

WEATHER_NULLS = (0.016, 0.0026, (3, 15))  # ~4 % of rows
PM_NULLS = (0.0005, 0.0001, (3, 8))  # ~0.1 % of rows

LABEL_HEADER: tuple[str, ...] = (
    "sensor_index",
    "fault",
    "start",
    "end",
    "start_iso",
    "end_iso",
)


@dataclass(frozen=True)
class Label:
    """Ground truth for one fault episode, as written to ``labels.csv``.

    ``start`` and ``end`` are the inclusive ``last_seen`` epoch seconds of the
    affected readings; for a dropout, of the readings that are missing.
    """

    sensor_index: int
    fault: str
    start: int
    end: int
    start_iso: str
    end_iso: str


@dataclass(frozen=True)
class Episode:
    """A placed fault, in array coordinates (sensor column, poll rows)."""

    kind: str
    sensor: int
    first: int
    length: int

    @property
    def rows(self) -> slice:
        """The poll rows the episode covers."""
        return slice(self.first, self.first + self.length)


@dataclass
class Simulation:
    """A generated run: (polls x sensors) arrays plus the fault labels.

    ``columns`` maps every API field to a (n_polls, n_sensors) array already
    rounded as published, with NaN for JSON null; ``present[k, s]`` is False
    where sensor ``s`` is left out of poll ``k`` (a dropout). The payload dicts
    are built from the arrays on demand, so a million-reading run can be
    streamed to disk without holding every row as Python objects.
    """

    seed: int
    n_sensors: int
    hours: float
    start: int
    data_time_stamps: np.ndarray
    sensor_index: np.ndarray
    present: np.ndarray
    columns: dict[str, np.ndarray]
    labels: list[Label]
    fields: tuple[str, ...] = FIELDS

    def iter_polls(self) -> Iterator[dict[str, Any]]:
        """Yield the poll payloads in time order, one API response each."""
        for k, stamp in enumerate(self.data_time_stamps.tolist()):
            yield _payload(stamp, _rows(self.columns, k, self.present[k], self.fields), self.fields)

    @cached_property
    def polls(self) -> list[dict[str, Any]]:
        """All poll payloads (built once, on first access)."""
        return list(self.iter_polls())


# --- Public API --------------------------------------------------------------


def generate(
    seed: int = DEFAULT_SEED,
    n_sensors: int = DEFAULT_SENSORS,
    hours: float = DEFAULT_HOURS,
    start: int = DEFAULT_START,
    *,
    channels: bool = False,
    smoke: int = 0,
    layout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Simulation:
    """Simulate ``hours`` of polls of ``n_sensors`` sensors from ``start``.

    Deterministic in its arguments. Faults are placed only after the first
    3 hours; runs too short to hold a fault kind simply have none of it.
    ``channels``: per-channel PM fields and channel faults; ``smoke``: plumes;
    ``layout``: (latitude, longitude, PM1 baseline) per sensor (``data/qc.py``).
    """
    n_polls = round(hours * 3600 / POLL_INTERVAL_S)
    if n_sensors < 1 or n_polls < 1:
        raise ValueError("need at least one sensor and one 120 s poll")
    if layout is not None and any(len(column) != n_sensors for column in layout):
        raise ValueError("layout needs one latitude, longitude and baseline per sensor")
    # Independent child streams, one per concern, all from the one seed (the first six are
    # those of the plain run, so its output does not depend on the scenario's options).
    streams = np.random.default_rng(seed).spawn(8)
    layout_rng, jitter_rng, weather_rng, pm_rng, fault_rng, null_rng = streams[:6]
    channel_rng, smoke_rng = streams[6:]
    shape = (n_polls, n_sensors)
    stamps = start + POLL_INTERVAL_S * np.arange(n_polls, dtype=np.int64)
    sensor_index, latitude, longitude = _sensor_layout(layout_rng, n_sensors)
    baseline = None
    if layout is not None:
        latitude, longitude = np.round(layout[0], 5), np.round(layout[1], 5)
        baseline = np.asarray(layout[2], dtype=float)
    last_seen = stamps[:, None] - jitter_rng.integers(0, MAX_JITTER_S + 1, shape)

    humidity, temperature, pressure = _simulate_weather(weather_rng, stamps, n_sensors)
    pm1_clean, ratio25, ratio10 = _simulate_pm1(pm_rng, stamps, n_sensors, baseline)
    labels: list[Label] = []
    if smoke:
        first = start + WARMUP_S + MAX_JITTER_S
        area = ((latitude.min(), latitude.max()), (longitude.min(), longitude.max()))
        plumes = qc.draw_plumes(smoke_rng, smoke, first, int(stamps[-1]) - MAX_JITTER_S, *area)
        added = qc.smoke_pm25(plumes, last_seen, latitude, longitude)
        pm1_clean = pm1_clean + added / ratio25  # the air itself: every PM field follows
        labels += _run_labels("smoke", qc.smoke_runs(added), sensor_index, last_seen)
    episodes = _place_faults(fault_rng, n_polls, n_sensors)
    channel_episodes = _place_channel_faults(channel_rng, episodes, shape) if channels else []
    pm1 = _add_spikes_and_drifts(fault_rng, pm1_clean, episodes)
    pm = _derive_pm_fields(pm1, ratio25, ratio10)
    if channels:
        pm = qc.split_channels(channel_rng, pm, _cf1_to_atm)
        for ep in channel_episodes:
            qc.apply_channel_fault(channel_rng, pm, ep.kind, ep.rows, ep.sensor)
        episodes = episodes + channel_episodes
    _freeze_stuck(pm, episodes)

    weather_null = _null_mask(null_rng, shape, *WEATHER_NULLS)
    pm_null = _null_mask(null_rng, shape, *PM_NULLS) & ~_fault_cells(episodes, shape)
    columns = {
        "sensor_index": np.broadcast_to(sensor_index, shape),
        "last_seen": last_seen,
        "latitude": np.broadcast_to(latitude, shape),
        "longitude": np.broadcast_to(longitude, shape),
        "humidity": _nulled(np.round(np.clip(humidity, 0, 100)), weather_null),
        "temperature": _nulled(np.round(temperature), weather_null),
        "pressure": _nulled(np.round(pressure, 2), weather_null),
        **{name: _nulled(_round_pm(values), pm_null) for name, values in pm.items()},
    }
    return Simulation(
        seed=seed,
        n_sensors=n_sensors,
        hours=hours,
        start=start,
        data_time_stamps=stamps,
        sensor_index=sensor_index,
        present=_presence(episodes, shape),
        columns=columns,
        labels=sorted(
            _labels(episodes, sensor_index, last_seen) + labels,
            key=lambda label: (label.start, label.sensor_index),
        ),
        fields=FIELDS + CHANNEL_FIELDS if channels else FIELDS,
    )


def write(sim: Simulation, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``polls.jsonl`` and ``labels.csv`` into ``out_dir``.

    Polls are streamed one line at a time; returns the two paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    polls_path, labels_path = out / "polls.jsonl", out / "labels.csv"
    with polls_path.open("w", encoding="utf-8", newline="\n") as fh:
        for poll in sim.iter_polls():
            fh.write(json.dumps(poll, separators=(",", ":")))
            fh.write("\n")
    with labels_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LABEL_HEADER)
        for label in sim.labels:
            writer.writerow([getattr(label, name) for name in LABEL_HEADER])
    return polls_path, labels_path


def summarize(sim: Simulation) -> dict[str, Any]:
    """Measure what a run contains: sizes, faults per kind and null rates.

    Null rates are fractions of the rows actually published (dropouts
    excluded); a row counts as null when its whole field group is null.
    """
    present = sim.present
    n_rows = int(present.sum())
    weather_null = np.isnan(sim.columns["humidity"]) & present
    pm_null = np.isnan(sim.columns["pm1.0_cf_1"]) & present
    faults = {kind.name: 0 for kind in FAULT_KINDS}
    for label in sim.labels:
        faults[label.fault] = faults.get(label.fault, 0) + 1
    return {
        "polls": len(sim.data_time_stamps),
        "sensors": sim.n_sensors,
        "rows": n_rows,
        "faults": faults,
        "weather_null_rate": float(weather_null.sum() / n_rows),
        "pm_null_rate": float(pm_null.sum() / n_rows),
    }


# --- Sensors and time ----------------------------------------------------------


def _sensor_layout(
    rng: np.random.Generator, n_sensors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw sorted unique 5-6 digit sensor indices and fixed locations."""
    sensor_index = np.sort(rng.choice(np.arange(10_000, 300_000), n_sensors, replace=False))
    latitude = np.round(rng.uniform(*LAT_RANGE, n_sensors), 5)
    longitude = np.round(rng.uniform(*LON_RANGE, n_sensors), 5)
    return sensor_index.astype(np.int64), latitude, longitude


def _local_hour(stamps: np.ndarray) -> np.ndarray:
    """Local clock hour (0 <= h < 24, fractional) of each epoch timestamp."""
    return ((stamps + UTC_OFFSET_S) % 86400) / 3600.0


def _daily_cycle(hour: np.ndarray, peak_hour: np.ndarray) -> np.ndarray:
    """A (polls x sensors) cosine of period 24 h, +1 at each sensor's peak."""
    return np.cos(2 * np.pi * (hour[:, None] - peak_hour) / 24.0)


def _ar1(
    rng: np.random.Generator, n_steps: int, n_series: int, phi: float, sd: float
) -> np.ndarray:
    """Stationary AR(1) paths with coefficient ``phi`` and marginal std ``sd``.

    Slow wander is what makes the series look like weather rather than noise;
    the loop runs over time only, each step vectorized over the series.
    """
    path = np.empty((n_steps, n_series))
    path[0] = rng.normal(0.0, sd, n_series)
    shocks = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), (n_steps, n_series))
    for k in range(1, n_steps):
        path[k] = phi * path[k - 1] + shocks[k]
    return path


# --- Signals -----------------------------------------------------------------


def _simulate_weather(
    rng: np.random.Generator, stamps: np.ndarray, n_sensors: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Humidity (% RH), temperature (deg F) and pressure (hPa), unrounded.

    Temperature follows a mid-afternoon-peaking sinusoid per sensor; humidity
    falls as temperature rises; pressure is ~1013 hPa with a per-sensor
    elevation offset, a slow synoptic swing and the semidiurnal tide.
    """
    n_polls = len(stamps)
    hour = _local_hour(stamps)
    mean_temp = rng.uniform(60.0, 70.0, n_sensors)
    temp_amplitude = rng.uniform(8.0, 13.0, n_sensors)
    temp_peak = rng.uniform(14.0, 16.0, n_sensors)
    temperature = (
        mean_temp
        + temp_amplitude * _daily_cycle(hour, temp_peak)
        + _ar1(rng, n_polls, n_sensors, phi=0.98, sd=1.2)
        + rng.normal(0.0, 0.4, (n_polls, n_sensors))
    )
    mean_rh = rng.uniform(42.0, 60.0, n_sensors)
    rh_per_degree = rng.uniform(1.6, 2.4, n_sensors)
    humidity = (
        mean_rh
        - rh_per_degree * (temperature - mean_temp)
        + _ar1(rng, n_polls, n_sensors, phi=0.98, sd=2.5)
        + rng.normal(0.0, 0.8, (n_polls, n_sensors))
    )
    elevation_offset = rng.uniform(-4.0, 1.5, n_sensors)
    elapsed_days = (stamps - stamps[0]) / 86400.0
    synoptic = 3.0 * np.sin(2 * np.pi * elapsed_days / 4.0 + rng.uniform(0, 2 * np.pi))
    tide = 0.7 * np.cos(4 * np.pi * (hour - 10.0) / 24.0)
    pressure = (
        1013.0
        + elevation_offset
        + (synoptic + tide)[:, None]
        + rng.normal(0.0, 0.04, (n_polls, n_sensors))
    )
    return humidity, temperature, pressure


def _simulate_pm1(
    rng: np.random.Generator,
    stamps: np.ndarray,
    n_sensors: int,
    baseline_given: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clean pm1.0_cf_1 (ug/m3) plus the channel ratios used to derive the rest.

    Each sensor has its own baseline, diurnal amplitude and peak hour (night to
    early morning, so the trough falls in the afternoon); a regional AR(1) moves
    all sensors together, a local AR(1) and white noise move each alone.
    Returns pm1 and the pm2.5/pm1 and pm10/pm2.5 ratios (polls x sensors).
    """
    n_polls = len(stamps)
    shape = (n_polls, n_sensors)
    baseline = rng.lognormal(math.log(5.0), 0.45, n_sensors)  # drawn even when given
    if baseline_given is not None:
        baseline = baseline_given
    amplitude = rng.uniform(0.25, 0.6, n_sensors)
    peak_hour = rng.uniform(3.0, 8.0, n_sensors)
    diurnal = 1.0 + amplitude * _daily_cycle(_local_hour(stamps), peak_hour)
    regional = _ar1(rng, n_polls, 1, phi=0.997, sd=0.3)  # ~11 h time constant
    local = _ar1(rng, n_polls, n_sensors, phi=0.99, sd=0.25)  # ~3 h time constant
    pm1 = baseline * diurnal * np.exp(regional + local + rng.normal(0.0, 0.12, shape))
    ratio25 = rng.uniform(1.3, 1.6, n_sensors) * np.exp(rng.normal(0.0, 0.03, shape))
    ratio10 = rng.uniform(1.03, 1.2, n_sensors) * np.exp(rng.normal(0.0, 0.02, shape))
    return pm1, ratio25, np.maximum(ratio10, 1.0)  # PM10 includes PM2.5: never less


def _cf1_to_atm(pm25_cf1: np.ndarray) -> np.ndarray:
    """PurpleAir's CF=1 -> ATM correction, roughly.

    ATM equals CF=1 up to 30 ug/m3; above, the ratio ATM/CF=1 falls linearly
    to 2/3 at 80 ug/m3 and stays there (a real snapshot shows ~0.90 at
    30-50, ~0.71 at 50-100 and ~0.66 above 100 ug/m3). Monotone in CF=1.
    """
    ratio = 1.0 - np.clip((pm25_cf1 - 30.0) / 50.0, 0.0, 1.0) / 3.0
    return pm25_cf1 * ratio


def _derive_pm_fields(
    pm1: np.ndarray, ratio25: np.ndarray, ratio10: np.ndarray
) -> dict[str, np.ndarray]:
    """All four PM fields from pm1.0_cf_1, so faults carry over consistently."""
    pm25 = pm1 * ratio25
    return {
        "pm1.0_cf_1": pm1,
        "pm2.5_cf_1": pm25,
        "pm10.0_cf_1": pm25 * ratio10,
        "pm2.5_atm": _cf1_to_atm(pm25),
    }


def _round_pm(values: np.ndarray) -> np.ndarray:
    """Round to 0.1 ug/m3 as published, never negative (and never -0.0)."""
    return np.round(np.maximum(values, 0.0), 1) + 0.0


def _nulled(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` as float with NaN (JSON null) where ``mask`` is True."""
    return np.where(mask, np.nan, values)


# --- Faults --------------------------------------------------------------------


def _fault_counts(n_polls: int, n_sensors: int) -> dict[str, int]:
    """Episodes per kind, scaled from the default run by post-warm-up readings."""
    eligible = max(n_polls - FIRST_FAULT_POLL, 0) * n_sensors
    default_polls = round(DEFAULT_HOURS * 3600 / POLL_INTERVAL_S)
    default_eligible = (default_polls - FIRST_FAULT_POLL) * DEFAULT_SENSORS
    return {k.name: round(k.per_default_run * eligible / default_eligible) for k in FAULT_KINDS}


def _place_faults(rng: np.random.Generator, n_polls: int, n_sensors: int) -> list[Episode]:
    """Place non-overlapping fault episodes after the warm-up.

    Sensors and start polls are drawn at random; an episode must keep
    ``FAULT_GAP_POLLS`` normal readings from any other on its sensor. An
    episode that cannot be placed (a short or crowded run) is skipped.
    """
    busy = np.zeros((n_sensors, n_polls), dtype=bool)
    episodes = []
    counts = _fault_counts(n_polls, n_sensors)
    for kind in FAULT_KINDS:
        for _ in range(counts[kind.name]):
            episode = _place_one(rng, kind, busy)
            if episode is None:
                continue
            episodes.append(episode)
            lo = max(episode.first - FAULT_GAP_POLLS, 0)
            busy[episode.sensor, lo : episode.first + episode.length + FAULT_GAP_POLLS] = True
    return episodes


def _place_channel_faults(
    rng: np.random.Generator, episodes: list[Episode], shape: tuple[int, int]
) -> list[Episode]:
    """Channel faults (`data/qc.py`), placed like the others, clear of them on each sensor."""
    n_polls, n_sensors = shape
    busy = np.zeros((n_sensors, n_polls), dtype=bool)
    for ep in episodes:
        busy[
            ep.sensor, max(ep.first - FAULT_GAP_POLLS, 0) : ep.first + ep.length + FAULT_GAP_POLLS
        ] = True
    eligible = max(n_polls - FIRST_FAULT_POLL, 0) * n_sensors
    default_eligible = (
        round(DEFAULT_HOURS * 3600 / POLL_INTERVAL_S) - FIRST_FAULT_POLL
    ) * DEFAULT_SENSORS
    placed = []
    for name, shortest, longest, per_default_run in qc.CHANNEL_FAULTS:
        kind = FaultKind(name, shortest, longest, per_default_run)
        for _ in range(round(per_default_run * eligible / default_eligible)):
            episode = _place_one(rng, kind, busy)
            if episode is None:
                continue
            placed.append(episode)
            lo = max(episode.first - FAULT_GAP_POLLS, 0)
            busy[episode.sensor, lo : episode.first + episode.length + FAULT_GAP_POLLS] = True
    return placed


def _place_one(rng: np.random.Generator, kind: FaultKind, busy: np.ndarray) -> Episode | None:
    """Draw a length and try random (sensor, start) spots until one is free."""
    n_sensors, n_polls = busy.shape
    room = n_polls - FIRST_FAULT_POLL
    if room < kind.min_readings:
        return None
    length = int(rng.integers(kind.min_readings, min(kind.max_readings, room) + 1))
    for _ in range(PLACEMENT_TRIES):
        sensor = int(rng.integers(n_sensors))
        first = int(rng.integers(FIRST_FAULT_POLL, n_polls - length + 1))
        if not busy[sensor, first : first + length].any():
            return Episode(kind.name, sensor, first, length)
    return None


def _add_spikes_and_drifts(
    rng: np.random.Generator, pm1: np.ndarray, episodes: list[Episode]
) -> np.ndarray:
    """Copy of ``pm1`` with the additive faults applied.

    A spike adds 150-900 ug/m3 to each of its readings; a drift adds a linear
    ramp reaching 50-300 ug/m3 at its last reading, then stops abruptly.
    """
    out = pm1.copy()
    for ep in episodes:
        if ep.kind == "spike":
            out[ep.rows, ep.sensor] += rng.uniform(*SPIKE_RANGE, ep.length)
        elif ep.kind == "drift":
            ramp = np.arange(1, ep.length + 1) / ep.length
            out[ep.rows, ep.sensor] += rng.uniform(*DRIFT_PEAK_RANGE) * ramp
    return out


def _freeze_stuck(pm: dict[str, np.ndarray], episodes: list[Episode]) -> None:
    """Make every PM field repeat its first value through each stuck episode."""
    for ep in episodes:
        if ep.kind == "stuck":
            for values in pm.values():
                values[ep.rows, ep.sensor] = values[ep.first, ep.sensor]


def _fault_cells(episodes: list[Episode], shape: tuple[int, int]) -> np.ndarray:
    """Mask of the readings a published fault changes (not dropouts)."""
    cells = np.zeros(shape, dtype=bool)
    for ep in episodes:
        if ep.kind != "dropout":
            cells[ep.rows, ep.sensor] = True
    return cells


def _presence(episodes: list[Episode], shape: tuple[int, int]) -> np.ndarray:
    """Mask of the readings that appear in the polls (False during dropouts)."""
    present = np.ones(shape, dtype=bool)
    for ep in episodes:
        if ep.kind == "dropout":
            present[ep.rows, ep.sensor] = False
    return present


def _labels(
    episodes: list[Episode], sensor_index: np.ndarray, last_seen: np.ndarray
) -> list[Label]:
    """Label records for the episodes, sorted by (start, sensor_index)."""
    labels = []
    for ep in episodes:
        start = int(last_seen[ep.first, ep.sensor])
        end = int(last_seen[ep.first + ep.length - 1, ep.sensor])
        labels.append(
            Label(int(sensor_index[ep.sensor]), ep.kind, start, end, iso_time(start), iso_time(end))
        )
    labels.sort(key=lambda label: (label.start, label.sensor_index))
    return labels


def _run_labels(
    kind: str, runs: list[tuple[int, int, int]], sensor_index: np.ndarray, last_seen: np.ndarray
) -> list[Label]:
    """Labels of `kind` for `(sensor, first poll, last poll)` runs."""
    labels = []
    for sensor, first, last in runs:
        start, end = int(last_seen[first, sensor]), int(last_seen[last, sensor])
        label = Label(int(sensor_index[sensor]), kind, start, end, iso_time(start), iso_time(end))
        labels.append(label)
    return labels




# --- Missing values ------------------------------------------------------------


def _null_mask(
    rng: np.random.Generator,
    shape: tuple[int, int],
    isolated_rate: float,
    run_rate: float,
    run_lengths: tuple[int, int],
) -> np.ndarray:
    """Readings to null: isolated misses plus runs along one sensor's series.

    Each reading is missed alone with probability ``isolated_rate`` and starts
    a run of ``run_lengths`` (inclusive) consecutive misses with ``run_rate``.
    """
    mask = rng.random(shape) < isolated_rate
    starts = np.argwhere(rng.random(shape) < run_rate)
    lengths = rng.integers(run_lengths[0], run_lengths[1] + 1, len(starts))
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    polls = np.repeat(starts[:, 0], lengths) + offsets
    sensors = np.repeat(starts[:, 1], lengths)
    inside = polls < shape[0]
    mask[polls[inside], sensors[inside]] = True
    return mask


# --- Payloads ------------------------------------------------------------------


def _rows(
    columns: dict[str, np.ndarray], k: int, present: np.ndarray, fields: Sequence[str] = FIELDS
) -> list[list[Any]]:
    """The ``data`` rows of poll ``k``: present sensors, in sensor_index order."""
    keep = np.flatnonzero(present)
    values = [_column_values(name, columns[name][k, keep]) for name in fields]
    return [list(row) for row in zip(*values, strict=True)]


def _column_values(name: str, values: np.ndarray) -> list[Any]:
    """One field's values as JSON-ready Python ints/floats, NaN -> None."""
    if values.dtype.kind != "f":
        return values.tolist()
    nulls = np.isnan(values)
    if name in INT_FIELDS:
        out = np.where(nulls, 0, values).astype(np.int64).tolist()
    else:
        out = values.tolist()
    for j in np.flatnonzero(nulls).tolist():
        out[j] = None
    return out


def _payload(
    data_time_stamp: int, rows: list[list[Any]], fields: Sequence[str] = FIELDS
) -> dict[str, Any]:
    """A ``GET /v1/sensors`` response body holding ``rows``."""
    return {
        "api_version": API_VERSION,
        "time_stamp": data_time_stamp + RESPONSE_DELAY_S,
        "data_time_stamp": data_time_stamp,
        "max_age": MAX_AGE_S,
        "firmware_default_version": FIRMWARE_DEFAULT_VERSION,
        "fields": list(fields),
        "data": rows,
    }


# --- Command line --------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Generate and write a run; print what it contains."""
    parser = argparse.ArgumentParser(
        prog="python -m data.simulate",
        description="Write simulated PurpleAir polls (polls.jsonl) and fault labels (labels.csv).",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--sensors", type=int, default=DEFAULT_SENSORS)
    parser.add_argument("--hours", type=float, default=DEFAULT_HOURS)
    parser.add_argument("--start", type=int, default=DEFAULT_START, help="epoch seconds")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--channels", action="store_true", help="channels A/B, channel faults")
    parser.add_argument("--smoke", type=int, default=0, help="regional smoke plumes")
    parser.add_argument(
        "--positions",
        type=Path,
        help="a PurpleAir payload: place the sensors at its sensors in the region, at their levels",
    )
    args = parser.parse_args(argv)

    began = time.perf_counter()
    layout = (
        None
        if args.positions is None
        else qc.real_layout(args.positions, args.sensors, args.seed, LAT_RANGE, LON_RANGE)
    )
    sim = generate(
        seed=args.seed,
        n_sensors=args.sensors,
        hours=args.hours,
        start=args.start,
        channels=args.channels,
        smoke=args.smoke,
        layout=layout,
    )
    paths = write(sim, args.out)
    elapsed = time.perf_counter() - began

    stats = summarize(sim)
    print(f"wrote {paths[0]} and {paths[1]} in {elapsed:.1f} s")
    print(
        f"{stats['rows']} rows, {stats['sensors']} sensors, {stats['polls']} polls; "
        f"faults {stats['faults']}; null rates: weather {stats['weather_null_rate']:.3%}, "
        f"PM {stats['pm_null_rate']:.3%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
