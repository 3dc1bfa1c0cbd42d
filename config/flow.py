"""The air-quality flow's configuration: one frozen dataclass per concern, one TOML table each.

To add an option, add one field to the group it belongs to: `name: type = option(default,
"one line on it")`. Its TOML key is the field name, its `build_flow` keyword too (unless
`keyword=` says otherwise); the README's example file and `python -m config` pick it up.

>>> FlowConfig().detection.detector, FlowConfig().detection.alarm_threshold()
('hst_ensemble', 0.5)
>>> FlowConfig(detection=DetectionConfig(threshold=1.5))
Traceback (most recent call last):
...
core.errors.ConfigError: [detection] threshold: 1.5 is out of range; allowed: from 0 to 1
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bytewax.inputs import Source
from bytewax.outputs import Sink

from config.options import Group, fail, group, option, where
from core.errors import ConfigError
from detectors.base import Detector
from detectors.catalog import (
    AIR_QUALITY_DETECTOR,
    DETECTORS,
    HOLDOFF_SECONDS,
    alarm_threshold,
    make_detector,
)
from detectors.hst import DEFAULT_FEATURES, DEFAULT_LIMITS, HalfSpaceTreesDetector
from imputers.window import STRATEGIES
from preparation.channels import ZERO_RUN, ZERO_SECONDS, ChannelAgreement
from preparation.correction import MAX_PM
from preparation.flatline import READINGS as FLATLINE_READINGS
from preparation.flatline import SECONDS as FLATLINE_SECONDS
from preparation.gaps import CLOCKS, INTERVAL, MAX_FILL, MODES, OFFLINE_AFTER
from preparation.neighbours import NeighbourRule
from preparation.sampling import SAMPLE_BY
from preparation.validation import DEFAULT_RANGES, RangeValidator
from sinks.database import BACKOFF as DATABASE_BACKOFF
from sinks.database import RETRIES as DATABASE_RETRIES
from sinks.database import TIMEOUT as DATABASE_TIMEOUT
from sinks.database import DatabaseSink, database_url
from sinks.jsonlines import JsonLinesSink
from sinks.webhook import LIMITS as WEBHOOK_LIMITS
from sinks.webhook import WebhookSink
from sources.documents import URL_LIMITS
from sources.http import HttpLimits
from sources.poller import API_KEY_ENV, PUBLIC_API, PurpleAirPoller
from sources.poller import DEFAULT_FIELDS as POLLED_FIELDS
from sources.poller import LIMITS as POLL_LIMITS
from sources.retry import Backoff
from sources.shards import DEFAULT_SHARDS
from sources.times import EARLIEST, EPOCH_RANGE, SKEW, TimeWindow, iso_time, parse_time

#: What the detector scores by default (but `hst`, the example's, scores `DEFAULT_FEATURES`).
SCORED_FEATURES = ("pm2.5_cf_1",)
#: The example's imputed fields.
DEFAULT_IMPUTE_FIELDS = ("temperature", "humidity", "pressure", "pm1.0_cf_1")
KEY_MODES = ("sensor", "global")
#: First-generation threshold of the cycle collector while the flow runs (`tune_gc`).
GC_THRESHOLD = 100_000

Target = str | Sink | None
Limits = Mapping[str, tuple[float, float]]

# Bounds that keep a run within memory (each allocated per sensor, or per run, when it starts).
#: Values a per-sensor window holds per field (imputation, scaling): 80 kB a field at most.
MAX_WINDOW = 10_000
#: HalfSpaceTrees nodes per sensor (n_trees x 2^(height+1)): 10 x 2^9 by default; each tree is
#: built whole when a sensor first reports (8 trees of height 16, 2^20 nodes, took 74 s).
MAX_TREE_NODES = 2**16
#: Sensor shards a file is read in: each is a partition that decodes the whole file.
MAX_SHARDS = 1024
#: Readings in one source batch (held in memory together).
MAX_BATCH = 1_000_000
#: A neighbour radius reaches at most this many area sides: a reading is sent to every area it
#: reaches, so (2 x this + 1)^2 areas at most (25 for 2).
MAX_REACH = 2
#: Seconds of event time per spatial window: an area holds its sensors' readings until it closes.
MAX_SPATIAL_WINDOW = 86_400
#: The longest connect or read timeout, seconds.
MAX_TIMEOUT = 3600.0
#: Fields of the flow's own records (`dataflows.steps.anomaly_record`, `reading_record`): a
#: feature or field of that name would overwrite them.
RECORD_FIELDS = (
    "sensor_index", "last_seen", "time", "kind", "reasons", "score", "imputed", "flags",
    "aqi_category", "status", "placeholder", "values", "missing", "details",
)  # fmt: skip


def _at_most(table: str, key: str, value: float, cap: float, why: str) -> None:
    """A bound that keeps the run within memory (`why` says what it bounds)."""
    if value > cap:
        shown = f"{cap:,}" if isinstance(cap, int) else f"{cap:g}"
        fail(table, key, value, f"at most {shown} ({why})", f"{value!r} is out of range")


def _timeouts(table: str, key: str, value: tuple[float, ...]) -> None:
    """Connect and read timeouts: each above 0 and at most `MAX_TIMEOUT` seconds."""
    if not all(0 < t <= MAX_TIMEOUT for t in value):
        allowed = f"seconds above 0 and at most {MAX_TIMEOUT:g}"
        fail(table, key, value, allowed, f"{value!r} is out of range")


def _not_record_fields(table: str, key: str, names: Sequence[str]) -> None:
    """Refuse a field name that the flow's own records use (`RECORD_FIELDS`)."""
    taken = [name for name in names if name in RECORD_FIELDS]
    if taken:
        fail(
            table, key, tuple(names) if not isinstance(names, str) else names,
            f"measurement names other than {', '.join(RECORD_FIELDS)}",
            f"{taken[0]!r} is a field of the flow's own records",
        )  # fmt: skip


def _valid(table: str, build: Callable[[], object]) -> None:
    """Build a component to let it check its own options; its refusal names the table."""
    try:
        build()
    except ValueError as error:
        raise ConfigError(f"[{table}] {error}") from None


# --- source -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PollBackoffConfig(Group):
    """Retry waits: the n-th failure in a row waits a random time in [d/2, d], d = min(cap,
    base·2ⁿ), and at least the server's Retry-After (`sources/retry.py`)."""

    table = "source.purpleair.backoff"
    base: float = option(2.0, "seconds before the first retry", min=0)
    cap: float = option(600.0, "the longest wait, seconds", min=0)
    max_retry_after: float = option(3600.0, "a server's Retry-After is honoured up to this", min=0)

    def backoff(self) -> Backoff:
        return Backoff(self.base, self.cap, self.max_retry_after)

    def check(self) -> None:
        _valid(self.table, self.backoff)


def _seconds(table: str, key: str, value: float) -> None:
    """A duration must be a finite number of seconds above 0."""
    if not (math.isfinite(value) and value > 0):
        fail(table, key, value, "a finite number of seconds above 0")


@dataclasses.dataclass(frozen=True)
class PollLimitsConfig(Group):
    """What one poll may cost (`sources/http.py`): one past the deadline is retried, an answer
    over a byte cap is a dead letter; redirects are followed to the same origin only, so the
    key is sent nowhere else."""

    table = "source.purpleair.limits"
    deadline: float = option(POLL_LIMITS.deadline_s, "seconds one request may take in all", min=0)
    max_bytes: int = option(POLL_LIMITS.max_bytes, "bytes of an answer as sent", min=1)
    max_decoded_bytes: int = option(
        POLL_LIMITS.max_decoded_bytes, "bytes of an answer once decompressed", min=1
    )
    max_redirects: int = option(5, "same-origin redirects followed", min=0)

    def http_limits(self, timeout: tuple[float, float]) -> HttpLimits:
        """The limits, with `timeout` as their connect and read seconds."""
        return HttpLimits(
            deadline_s=self.deadline,
            connect_s=timeout[0],
            read_s=timeout[1],
            max_bytes=self.max_bytes,
            max_decoded_bytes=self.max_decoded_bytes,
            max_redirects=self.max_redirects,
        )

    def check(self) -> None:
        _seconds(self.table, "deadline", self.deadline)


@dataclasses.dataclass(frozen=True)
class PurpleAirConfig(Group):
    """The live PurpleAir API poller (`sources/poller.py`), used with `path = "purpleair"`."""

    table = "source.purpleair"
    base_url: str = option(PUBLIC_API, "API root (/sensors is appended)")
    interval: float = option(120.0, "seconds between polls (under 60 only on loopback)", min=0)
    location_type: int | None = option(
        None, "0: outside sensors only, 1: inside; unset: both", example=0
    )
    bbox: tuple[float, float, float, float] | None = option(
        None,
        "[nwlng, nwlat, selng, selat]: only sensors inside this box",
        example=(-122.55, 38.05, -121.75, 37.25),
    )
    show_only: tuple[int, ...] | None = option(
        None, "only these sensor indexes", example=(131075, 166187)
    )
    max_age: int | None = option(
        None, "only sensors seen in the last this many seconds", example=3600
    )
    fields: tuple[str, ...] | None = option(
        None, "fields to request; unset: what the flow needs", example=POLLED_FIELDS
    )
    timeout: tuple[float, float] = option((5.0, 30.0), "connect and read timeouts, seconds")
    limits: PollLimitsConfig = group(PollLimitsConfig)
    backoff: PollBackoffConfig = group(PollBackoffConfig)
    max_polls: int | None = option(None, "stop after this many answered polls", min=1, example=10)
    api_key_env: str = option(API_KEY_ENV, "the environment variable holding the API key")
    seed: int | None = option(None, "seed of the retry jitter; unset: random", example=1)

    def poller(
        self, needed: Sequence[str] = POLLED_FIELDS, window: TimeWindow | None = None
    ) -> PurpleAirPoller:
        """The poller, asking for `fields` or else for `needed`, reading rows whose time is in
        `window` (unset: the default window)."""
        options = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        options["fields"] = self.fields or tuple(dict.fromkeys(needed))
        options["backoff"] = self.backoff.backoff()
        if window is not None:
            options["window"] = window
        options["limits"] = self.limits.http_limits(self.timeout)
        return PurpleAirPoller(**options)

    def check(self) -> None:
        _timeouts(self.table, "timeout", self.timeout)
        _valid(self.table, self.poller)


@dataclasses.dataclass(frozen=True)
class TimesConfig(Group):
    """The plausible times of a reading (`sources/times.py`): a row dated outside them is a dead
    letter, read by no sensor's state. ISO 8601 text, UTC unless it gives an offset."""

    table = "source.times"
    earliest: str | None = option(
        None, f"rows before this are dead letters; unset: {EARLIEST}", example=EARLIEST
    )
    latest: str | None = option(
        None,
        "rows after this are dead letters; unset: the wall clock plus skew",
        example="2030-01-01T00:00:00Z",
    )
    skew: int = option(
        SKEW,
        "seconds a row may be ahead of the wall clock (latest unset)",
        keyword="time_skew",
        min=0,
        max=86400,
    )

    def window(self) -> TimeWindow:
        """The window every source of the flow checks its rows' times against."""
        earliest = None if self.earliest is None else self._epoch("earliest")
        latest = None if self.latest is None else self._epoch("latest")
        return TimeWindow(earliest, latest, self.skew)

    def _epoch(self, name: str) -> int:
        text = getattr(self, name)
        try:
            value = parse_time(text)
        except ValueError:
            fail(self.table, name, text, "an ISO 8601 date or date-time in whole seconds")
        if not EPOCH_RANGE[0] <= value <= EPOCH_RANGE[1]:
            fail(self.table, name, text, "a time in the years 1 to 9999")
        return value

    def check(self) -> None:
        low, high = self.window().bounds()
        if low > high:  # a window that keeps nothing
            fail(
                self.table,
                "earliest" if self.earliest is not None else "latest",
                self.earliest or self.latest,
                f"a window that holds a time: {iso_time(low)} is after {iso_time(high)}",
                "a window that keeps no row",
            )


@dataclasses.dataclass(frozen=True)
class UrlLimitsConfig(PollLimitsConfig):
    """What reading an http(s) `path` may cost (`sources/http.py`): past the deadline or over a
    byte cap, the run stops with one line; redirects are followed to the same origin only."""

    table = "source.limits"
    deadline: float = option(URL_LIMITS.deadline_s, "seconds the request may take in all", min=0)
    max_bytes: int = option(URL_LIMITS.max_bytes, "bytes of the answer as sent", min=1)
    max_decoded_bytes: int = option(
        URL_LIMITS.max_decoded_bytes, "bytes of the answer once decompressed", min=1
    )
    timeout: tuple[float, float] = option(
        (URL_LIMITS.connect_s, URL_LIMITS.read_s), "connect and read timeouts, seconds"
    )

    def http_limits(self, timeout: tuple[float, float] | None = None) -> HttpLimits:
        """The limits, with this table's `timeout` unless another is given."""
        return super().http_limits(timeout or self.timeout)

    def check(self) -> None:
        super().check()
        _timeouts(self.table, "timeout", self.timeout)


@dataclasses.dataclass(frozen=True)
class SourceConfig(Group):
    """Where readings come from."""

    table = "source"
    path: str | Path | Source | None = option(
        None,
        'a payload or JSON-lines file, an http(s) URL or "purpleair"; unset: data/polls.jsonl',
        keyword="source",
        example="data/polls.jsonl",
    )
    limits: UrlLimitsConfig = group(UrlLimitsConfig, keyword="source_limits")
    purpleair: PurpleAirConfig = group(PurpleAirConfig, keyword="purpleair")
    times: TimesConfig = group(TimesConfig)


# --- cleaning -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImputationConfig(Group):
    """Missing values from each sensor's own recent observed values (`WindowImputer`)."""

    table = "cleaning.imputation"
    fields: tuple[str, ...] = option(
        DEFAULT_IMPUTE_FIELDS, "fields to impute", keyword="impute_fields"
    )
    window: int = option(10, "observed values the imputer looks back on", min=1)
    strategy: str = option("mean", "how the window becomes a value", choices=STRATEGIES)

    def check(self) -> None:
        _not_record_fields(self.table, "fields", self.fields)
        _at_most(self.table, "window", self.window, MAX_WINDOW, "values kept per sensor and field")


@dataclasses.dataclass(frozen=True)
class ValidationConfig(Group):
    """Physical ranges: a value outside its range becomes missing (then imputed), flagged."""

    table = "cleaning.validation"
    enabled: bool = option(
        True, "check the physical ranges (fault out_of_range)", keyword="validate"
    )
    ranges: Limits = option(DEFAULT_RANGES, "[lo, hi] per field", keyword="ranges")

    def check(self) -> None:
        _valid(self.table, lambda: RangeValidator(self.ranges))


@dataclasses.dataclass(frozen=True)
class ChannelsConfig(Group):
    """Channel agreement (`preparation/channels.py`): the EPA's rule on channels A and B, a dead
    channel at 0, PurpleAir's own downgrade; the trustworthy channel's PM is kept, or none."""

    table = "cleaning.channels"
    enabled: bool = option(True, "check that the two laser channels agree", keyword="channels")
    abs_limit: float = option(
        5.0,
        "EPA: they disagree when |A - B| is above this, µg/m³ ...",
        keyword="channel_abs",
        min=0,
    )
    rel_limit: float = option(
        0.7, "... and 2|A - B|/(A + B) is above this", keyword="channel_rel", min=0
    )
    zero_other: float = option(
        2.0,
        "one channel at 0 while the other is above this, µg/m³, is dead",
        keyword="channel_zero",
    )
    zero_run: int = option(
        ZERO_RUN,
        "... or above 0 for this many readings in a row",
        keyword="channel_zero_run",
        min=1,
    )
    zero_seconds: int = option(
        ZERO_SECONDS,
        "... covering at least this time (1800: 15 readings at 2 min; 15 decide at 10 min)",
        keyword="channel_zero_seconds",
        min=0,
    )
    use_flags: bool = option(
        True, "trust PurpleAir's channel_flags when in the payload", keyword="channel_flags"
    )

    def rule(self, history: bool = True) -> ChannelAgreement:
        """The per-sensor rule (`history=False` in global mode: no last trusted value)."""
        return ChannelAgreement(
            self.abs_limit,
            self.rel_limit,
            self.zero_other,
            self.zero_run,
            zero_seconds=self.zero_seconds,
            use_flags=self.use_flags,
            history=history,
        )

    def check(self) -> None:
        _valid(self.table, self.rule)


@dataclasses.dataclass(frozen=True)
class FlatlineConfig(Group):
    """A sensor whose PM (or every field) does not move is stuck (`preparation/flatline.py`)."""

    table = "cleaning.flatline"
    readings: int | None = option(
        FLATLINE_READINGS,
        "identical readings in a row that make a flatline, at least; false: off",
        keyword="flatline",
        min=2,
    )
    seconds: int = option(
        FLATLINE_SECONDS,
        "... covering at least this time (1800: 15 readings at 2 min, 5 at 10 min)",
        keyword="flatline_seconds",
        min=0,
    )


@dataclasses.dataclass(frozen=True)
class EpaConfig(Group):
    """The US EPA PM2.5 correction (Barkjohn 2021, extended 2022), as field pm2.5_epa; the
    NowCast and US AQI of it as fields pm2.5_nowcast and aqi."""

    table = "cleaning.epa"
    enabled: bool = option(True, "add pm2.5_epa", keyword="epa")
    extended: bool = option(
        True, "the 2022 correction, at every concentration", keyword="epa_extended"
    )
    max: float = option(
        MAX_PM, "without extended: pm2.5_cf_1 above this gets none", keyword="epa_max", min=0
    )
    aqi: bool = option(True, "add pm2.5_nowcast and aqi (per sensor)", keyword="aqi")


@dataclasses.dataclass(frozen=True)
class GapsConfig(Group):
    """Missed time steps and silent sensors, per sensor (off in global mode)."""

    table = "cleaning.gaps"
    mode: str | None = option(
        "events",
        '"events", "fill" (placeholder readings) or false (off)',
        keyword="gaps",
        choices=MODES,
    )
    interval: int | None = option(
        None,
        "seconds between a sensor's readings; unset: each sensor's own, observed",
        min=1,
        example=INTERVAL,
    )
    offline_after: int = option(OFFLINE_AFTER, "seconds of silence that make a sensor offline")
    max_fill: int = option(
        MAX_FILL, "fill: placeholders for one gap at most; a longer gap is a gap event", min=1
    )
    clock: str | Callable[[], datetime] = option(
        "event", '"event": noticed at the next reading; "system": also by the wall clock'
    )

    def check(self) -> None:
        if not callable(self.clock) and self.clock not in CLOCKS:
            fail(self.table, "clock", self.clock, " or ".join(map(repr, CLOCKS)) + " or a function")
        if self.offline_after < (self.interval or 1):
            fail(
                self.table,
                "offline_after",
                self.offline_after,
                f"at least interval ({self.interval})",
            )


@dataclasses.dataclass(frozen=True)
class ScalingConfig(Group):
    """z-scores (`<field>_z`) against each sensor's own past."""

    table = "cleaning.scaling"
    fields: tuple[str, ...] = option((), "fields to standardise", keyword="scale")
    window: int | None = option(
        None,
        "values the z-score looks back on; unset: all the past",
        keyword="scale_window",
        min=2,
        example=720,
    )

    def check(self) -> None:
        _not_record_fields(self.table, "fields", self.fields)
        if self.window is not None:
            why = "values kept per sensor and field"
            _at_most(self.table, "window", self.window, MAX_WINDOW, why)


@dataclasses.dataclass(frozen=True)
class CleaningConfig(Group):
    """The stages before the detector, in the order they run."""

    table = "cleaning"
    flatline: FlatlineConfig = group(FlatlineConfig)
    validation: ValidationConfig = group(ValidationConfig)
    channels: ChannelsConfig = group(ChannelsConfig)
    imputation: ImputationConfig = group(ImputationConfig)
    epa: EpaConfig = group(EpaConfig)
    gaps: GapsConfig = group(GapsConfig)
    scaling: ScalingConfig = group(ScalingConfig)


# --- detection ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DetectionConfig(Group):
    """The per-sensor detector (`detectors/catalog.py`, scored before it learns) and the alert
    rule."""

    table = "detection"
    detector: str = option(
        AIR_QUALITY_DETECTOR,
        "the per-sensor detector; hst: the example's HalfSpaceTrees (limits below)",
        choices=DETECTORS,
    )
    threshold: float | None = option(
        None,
        "report readings scoring above it; unset: the detector's own",
        min=0,
        max=1,
        example=0.7,
    )
    faults: bool = option(
        True, "report a reading a rule flags, whatever its score", keyword="report_faults"
    )
    features: tuple[str, ...] | None = option(
        None,
        "detector features (one but for hst); unset: pm2.5_cf_1, hst: the example's pm1.0_cf_1",
        example=SCORED_FEATURES,
    )
    limits: Limits = option(DEFAULT_LIMITS, "hst: [lo, hi] per feature, needed for every feature")
    n_trees: int = option(10, "HalfSpaceTrees (hst, learned_hst, hst_ensemble): trees", min=1)
    height: int = option(8, "HalfSpaceTrees: tree height", min=0)
    window_size: int = option(72, "HalfSpaceTrees: readings per learning window", min=1)
    seed: int | None = option(11, "HalfSpaceTrees: random seed; false: random")
    holdoff_seconds: int | None = option(
        HOLDOFF_SECONDS,
        "hst_ensemble: seconds an alarm holds later scores below the threshold; false: 30 readings",
        min=0,
    )

    def hst_options(self) -> dict[str, object]:
        """The `HalfSpaceTreesDetector` options."""
        return {
            "features": self.features,
            "limits": self.limits,
            "n_trees": self.n_trees,
            "height": self.height,
            "window_size": self.window_size,
            "seed": self.seed,
        }

    def detector_factory(self) -> Callable[[], Detector]:
        """What builds a sensor's fresh detector."""
        if self.detector == "hst":
            return functools.partial(HalfSpaceTreesDetector, **self.hst_options())
        options = {}
        if self.detector in ("learned_hst", "hst_ensemble"):
            options = {
                k: v for k, v in self.hst_options().items() if k not in ("features", "limits")
            }
        if self.detector == "hst_ensemble":
            options["holdoff_seconds"] = self.holdoff_seconds
        return functools.partial(make_detector, self.detector, self.features[0], **options)

    def alarm_threshold(self) -> float:
        """`threshold`, or the detector's own when unset."""
        if self.threshold is not None:
            return self.threshold
        return alarm_threshold(self.detector_factory()())

    def check(self) -> None:
        if self.features is None:  # PM2.5, the EPA correction's and the AQI's pollutant
            default = DEFAULT_FEATURES if self.detector == "hst" else SCORED_FEATURES
            object.__setattr__(self, "features", default)
        _not_record_fields(self.table, "features", self.features)
        nodes = self.n_trees * 2 ** min(self.height + 1, 64)
        if nodes > MAX_TREE_NODES:
            fail(
                self.table, "height", self.height,
                f"n_trees x 2^(height+1) at most {MAX_TREE_NODES:,} nodes per sensor",
                f"{self.n_trees} trees of height {self.height} are {nodes:,} nodes per sensor",
            )  # fmt: skip
        if self.detector != "hst" and len(self.features) != 1:
            fail(
                self.table, "features", self.features, "one feature", f"{self.detector} scores one"
            )
        _valid(self.table, lambda: self.detector_factory()())


# --- spatial ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpatialConfig(Group):
    """Neighbours and pollution events (`preparation/neighbours.py`): a second keyed stage, by
    area, over event-time windows (per sensor only: off in global mode)."""

    table = "spatial"
    enabled: bool = option(True, "compare each sensor with its neighbours", keyword="spatial")
    field: str = option("pm2.5_cf_1", "the value compared", keyword="spatial_field")
    window: int = option(600, "seconds of event time per window", keyword="spatial_window", min=60)
    grace: int = option(
        1800, "a new sensor's first seconds are not compared", keyword="spatial_grace", min=0
    )
    area_km: float = option(30.0, "side of an area, km", keyword="area_km", min=1)
    radius_km: float = option(10.0, "neighbours within this, km", keyword="radius_km", min=0.1)
    min_neighbours: int = option(3, "neighbours needed to judge", keyword="min_neighbours", min=1)
    abs_limit: float = option(
        30.0,
        "off the neighbours: |x - centre| above this, µg/m³ ...",
        keyword="neighbour_abs",
        min=0,
    )
    rel_limit: float = option(
        0.5, "... and above this share of the centre ...", keyword="neighbour_rel", min=0
    )
    z_limit: float = option(
        2.0, "... and above this many spreads of the neighbours", keyword="neighbour_z", min=0
    )
    open_windows: int = option(
        3, "reported after this many windows off ...", keyword="neighbour_open", min=1
    )
    of_windows: int = option(4, "... of the last this many", keyword="neighbour_of", min=1, max=60)
    min_spread: float = option(
        1.0, "the spread is at least this, µg/m³", keyword="neighbour_min_spread", min=0
    )
    rise_abs: float = option(10.0, "a rise: more than this above baseline", keyword="rise_abs")
    rise_ratio: float = option(1.5, "... and more than this times it", keyword="rise_ratio", min=1)
    join_abs: float = option(
        5.0, "during an event, a sensor up by more than this is in it, µg/m³", min=0
    )
    event_share: float = option(
        0.5, "an event: this share of an area's sensors rise", keyword="event_share", min=0, max=1
    )
    min_rising: int = option(3, "... and at least this many", keyword="min_rising", min=1)
    baseline_alpha: float = option(
        0.1, "baseline: weight of each new window", keyword="baseline_alpha", min=0, max=1
    )
    baseline_windows: int = option(
        3, "baseline: windows before it is used", keyword="baseline_windows", min=1
    )
    drift_level: float = option(
        5.0, "calibration drift: windows whose centre is at least this, µg/m³", min=0
    )
    drift_ratio: float = option(
        0.3, "... a day off when its median ratio is beyond 1 ± this (EPA: 30 % CV)", min=0.01
    )
    drift_windows: int = option(24, "... a day judged on at least this many windows", min=1)
    drift_days: int = option(3, "... this many off days in a row: a finding", min=1)

    def rule(self) -> NeighbourRule:
        names = [f.name for f in dataclasses.fields(NeighbourRule)]
        return NeighbourRule(**{name: getattr(self, name) for name in names})

    def check(self) -> None:
        _not_record_fields(self.table, "field", [self.field])
        why = "an area holds its readings until the window closes"
        _at_most(self.table, "window", self.window, MAX_SPATIAL_WINDOW, why)
        if self.radius_km > MAX_REACH * self.area_km:
            fail(
                self.table, "radius_km", self.radius_km,
                f"at most {MAX_REACH} x area_km ({MAX_REACH * self.area_km:g}): a reading goes to "
                "every area its radius reaches",
                f"{self.radius_km!r} is out of range",
            )  # fmt: skip
        _valid(self.table, self.rule)


# --- outputs ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WebhookBackoffConfig(PollBackoffConfig):
    """The webhook's retry waits (as the poller's, shorter)."""

    table = "outputs.webhook.backoff"
    base: float = option(2.0, "seconds before the first retry", min=0)
    cap: float = option(30.0, "the longest wait, seconds", min=0)
    max_retry_after: float = option(60.0, "a server's Retry-After is honoured up to this", min=0)


@dataclasses.dataclass(frozen=True)
class WebhookLimitsConfig(PollLimitsConfig):
    """What one POST may cost (`sources/http.py`): past the deadline it is retried; a redirect
    to another origin is not followed (the records become dead letters)."""

    table = "outputs.webhook.limits"
    deadline: float = option(
        WEBHOOK_LIMITS.deadline_s, "seconds one request may take in all", min=0
    )
    max_bytes: int = option(WEBHOOK_LIMITS.max_bytes, "bytes of an answer as sent", min=1)
    max_decoded_bytes: int = option(
        WEBHOOK_LIMITS.max_decoded_bytes, "bytes of an answer once decompressed", min=1
    )


@dataclasses.dataclass(frozen=True)
class WebhookConfig(Group):
    """Anomalies also POSTed to a URL (`sinks/webhook.py`), as JSON arrays."""

    table = "outputs.webhook"
    url: str | None = option(
        None, "the http(s) URL; unset: no webhook", example="https://alerts.example/hook"
    )
    dead_letters: str = option(
        "undelivered_alerts.jsonl",
        "where undeliverable anomalies go",
        keyword="webhook_dead_letters",
    )
    headers: Mapping[str, str] = option({}, "extra HTTP headers (e.g. Authorization)")
    timeout: tuple[float, float] = option((5.0, 10.0), "connect and read timeouts, seconds")
    limits: WebhookLimitsConfig = group(WebhookLimitsConfig)
    retries: int = option(3, "retries of a failed request", min=0)
    backoff: WebhookBackoffConfig = group(WebhookBackoffConfig)
    max_batch: int = option(500, "anomalies per request", min=1)
    seed: int | None = option(None, "seed of the retry jitter; unset: random", example=1)

    def sink(self) -> WebhookSink:
        """The webhook sink (undeliverable anomalies to `dead_letters`)."""
        options = {spec.name: getattr(self, spec.name) for spec in dataclasses.fields(self)}
        options["backoff"] = self.backoff.backoff()
        options["limits"] = self.limits.http_limits(self.timeout)
        return WebhookSink(**options)

    def check(self) -> None:
        _timeouts(self.table, "timeout", self.timeout)
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            fail(self.table, "url", self.url, "an http:// or https:// URL")


@dataclasses.dataclass(frozen=True)
class SampleConfig(Group):
    """A seeded reservoir of cleaned readings, written at the end of a finite run."""

    table = "outputs.sample"
    size: int = option(
        0, "readings kept per sensor (or overall); 0: no sample", keyword="sample", min=0
    )
    by: str = option(
        "sensor", "one reservoir per sensor, or global", keyword="sample_by", choices=SAMPLE_BY
    )
    seed: int = option(11, "the reservoir's seed", keyword="sample_seed")
    path: Target = option(
        None,
        "where the sample is written (needed when size > 0)",
        keyword="sample_path",
        example="sample.jsonl",
    )

    def sink(self) -> Sink:
        """The sample's sink: a JSON-lines file, stdout when unset, or the sink given."""
        if self.path is None or isinstance(self.path, str):
            return JsonLinesSink(self.path, stream="stdout")
        return self.path

    def check(self) -> None:
        if self.size and self.path is None:
            fail(self.table, "path", None, "a file path when size > 0", "unset")


@dataclasses.dataclass(frozen=True)
class DatabaseBackoffConfig(Group):
    """Waits between a database's failed attempts: the n-th in a row waits d/2 to d seconds,
    d = min(cap, base·2ⁿ) (`sources/retry.py`)."""

    table = "outputs.database.backoff"
    base: float = option(DATABASE_BACKOFF.base, "seconds before the first retry", min=0)
    cap: float = option(DATABASE_BACKOFF.cap, "the longest wait, seconds", min=0)

    def backoff(self) -> Backoff:
        return Backoff(self.base, self.cap)

    def check(self) -> None:
        _valid(self.table, self.backoff)


@dataclasses.dataclass(frozen=True)
class DatabaseConfig(Group):
    """How the outputs written to a database (SQLite, PostgreSQL) ride out trouble: each attempt
    waits `timeout` for a lock or a connection; after `retries` the flow stops
    (`sinks/database.py`)."""

    table = "outputs.database"
    timeout: float = option(
        DATABASE_TIMEOUT, "seconds one attempt waits for a lock or a connection", min=0
    )
    retries: int = option(
        DATABASE_RETRIES, "retries of a batch before the flow stops with an error", min=0
    )
    backoff: DatabaseBackoffConfig = group(DatabaseBackoffConfig)
    seed: int | None = option(None, "seed of the retry jitter; unset: random", example=1)

    def sink(self, url: str, table: str) -> DatabaseSink:
        """The sink upserting into `table` of the database `url`."""
        return DatabaseSink(
            url,
            table,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff.backoff(),
            seed=self.seed,
        )

    def check(self) -> None:
        if self.timeout <= 0:
            fail(self.table, "timeout", self.timeout, "more than 0")
        _at_most(self.table, "timeout", self.timeout, MAX_TIMEOUT, "seconds")


#: Each output (also the name of its table in a database), and the stream it goes to when unset
#: (incidents: none are made unless the option is set).
OUTPUT_STREAMS = {
    "anomalies": "stdout",
    "dead_letters": "stderr",
    "readings": "stdout",
    "events": "stderr",
    "incidents": "stdout",
}
#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"


def _is_sqlite_file(path: Path) -> bool:
    """Whether `path` is an existing SQLite database file (appending JSON lines would ruin it);
    only a regular file is opened (a pipe would block)."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


@dataclasses.dataclass(frozen=True)
class OutputsConfig(Group):
    """Where results go: a database (a path ending in .db, .sqlite or .sqlite3, sqlite:///PATH,
    or postgresql://...: each result once, even across a crash and resume), a JSON-lines file
    path (appended), or, from Python, a Bytewax sink."""

    table = "outputs"
    anomalies: Target = option(
        None, "anomalies; unset: stdout", keyword="output", example="anomalies.jsonl"
    )
    dead_letters: Target = option(
        None, "rows that could not be read; unset: stderr", example="dead_letters.jsonl"
    )
    readings: Target = option(
        None, "every cleaned, scored reading; unset: not written", example="readings.db"
    )
    events: Target = option(
        None, "gap and sensor_offline events; unset: stderr", example="events.jsonl"
    )
    totals: Sink | None = option(None, "the run's totals (a sink, from Python); unset: the log")
    incidents: Target = option(
        None,
        "incident records, open and close, per sensor fault and area event; unset: none",
        example="incidents.jsonl",
    )
    incident_clear: int = option(
        1800, "an incident closes this many seconds after its last flag", min=1
    )
    database: DatabaseConfig = group(DatabaseConfig, keyword="database")
    webhook: WebhookConfig = group(WebhookConfig, keyword="webhook", shorthand="url")
    sample: SampleConfig = group(SampleConfig)

    def sink(self, name: str) -> Sink:
        """The sink of output `name` (`anomalies`, `dead_letters`, `readings`, `events`,
        `incidents`): its table of a database, a JSON-lines file, its stream when unset, or the
        sink given."""
        target = getattr(self, name)
        url = database_url(target)
        if url is not None:
            return self.database.sink(url, name)
        if target is None or isinstance(target, str):
            return JsonLinesSink(target, stream=OUTPUT_STREAMS[name])
        return target

    def files(self) -> list[tuple[str, str, str]]:
        """Every output this run writes to a file or a database: (table, key, target)."""
        found = [(self.table, name, getattr(self, name)) for name in OUTPUT_STREAMS]
        found.append((self.sample.table, "path", self.sample.path))
        if self.webhook.url is not None:
            found.append((self.webhook.table, "dead_letters", self.webhook.dead_letters))
        return [(t, k, v) for t, k, v in found if isinstance(v, str) and v != "-"]

    def check(self) -> None:
        for name in OUTPUT_STREAMS:
            url = database_url(getattr(self, name))
            if url is not None:
                _valid(self.table, lambda url=url, name=name: self.database.sink(url, name))
        if database_url(self.sample.path) is not None:
            fail(
                self.sample.table, "path", self.sample.path, "a JSON-lines file path", "a database"
            )
        self._check_files()

    def _check_files(self) -> None:
        """No output loses data silently: a JSON-lines file is not a database's file, nor another
        output's file, and its folder exists (several outputs into one database, each its own
        table, are fine)."""
        files = self.files()
        databases = {}  # an SQLite file's real path → the output writing it
        for table, key, target in files:
            url = database_url(target)
            if url is not None and url.startswith("sqlite:///"):
                real = os.path.realpath(url.removeprefix("sqlite:///"))
                databases.setdefault(real, where(table, key))
        seen: dict[str, str] = {}
        own = "a JSON-lines file of its own"
        for table, key, target in files:
            if database_url(target) is not None:
                continue
            path, real = Path(target), os.path.realpath(target)
            if real in databases:
                problem = f"{target!r} is the database file of {databases[real]}"
                fail(table, key, target, own, problem)
            if path.is_dir():
                fail(table, key, target, own, f"{target!r} is a folder")
            if not path.parent.is_dir():
                fail(table, key, target, own, f"the folder {str(path.parent)!r} does not exist")
            if _is_sqlite_file(path):
                fail(table, key, target, own, f"{target!r} is an SQLite database file")
            if path.exists() and not path.is_file():
                continue  # /dev/null, a pipe: what is written there is meant to go
            if real in seen:
                fail(table, key, target, own, f"{target!r} is also the file of {seen[real]}")
            seen[real] = where(table, key)


# --- run ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunConfig(Group):
    """How the run is laid out and tuned."""

    table = "run"
    key: str = option(
        "sensor",
        '"sensor": state per sensor; "global": one of each, in file order',
        choices=KEY_MODES,
    )
    batch_size: int = option(1000, "readings per source batch", min=1)
    shards: int = option(
        DEFAULT_SHARDS, "sensor shards a file is read in (match the worker count)", min=1
    )
    progress: float | None = option(10.0, "seconds between progress log lines; false: none", min=0)
    gc_threshold: int | None = option(
        GC_THRESHOLD, "cycle-collector threshold while the flow runs; false: leave it", min=1
    )

    def check(self) -> None:
        why = "each shard is a partition that reads the whole file"
        _at_most(self.table, "shards", self.shards, MAX_SHARDS, why)
        _at_most(self.table, "batch_size", self.batch_size, MAX_BATCH, "readings held at once")


@dataclasses.dataclass(frozen=True)
class FlowConfig(Group):
    """The whole air-quality flow: one table per concern."""

    table = ""
    source: SourceConfig = group(SourceConfig)
    cleaning: CleaningConfig = group(CleaningConfig)
    detection: DetectionConfig = group(DetectionConfig)
    spatial: SpatialConfig = group(SpatialConfig)
    outputs: OutputsConfig = group(OutputsConfig)
    run: RunConfig = group(RunConfig)
