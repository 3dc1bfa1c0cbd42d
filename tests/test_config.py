"""The typed configuration: every keyword sets its option, values are checked when built, and a
bad option is one actionable line, before any data is read."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from bytewax.testing import TestingSink

from config import KEYWORDS, ConfigError, FlowConfig, resolve, tables_of
from dataflows.air_quality import build_flow
from tests.conftest import ROOT

#: `build_flow`'s keywords before the configuration existed: every one must keep working.
FLAT_KEYWORDS = [
    "source",
    "key",
    "threshold",
    "detector",
    "output",
    "dead_letters",
    "readings",
    "totals",
    "impute_fields",
    "window",
    "strategy",
    "features",
    "limits",
    "n_trees",
    "height",
    "window_size",
    "seed",
    "batch_size",
    "shards",
    "purpleair",
    "webhook",
    "webhook_dead_letters",
    "progress",
    "validate",
    "ranges",
    "epa",
    "epa_max",
    "gaps",
    "interval",
    "offline_after",
    "clock",
    "events",
    "scale",
    "scale_window",
    "sample",
    "sample_by",
    "sample_seed",
    "sample_path",
    "gc_threshold",
]

#: For every keyword, where it lives in a TOML file (`table.key`, or `table` for a keyword that
#: takes a whole table) and a value other than the default (a new option needs one here).
CHANGED = {
    "source": ("source.path", "other.jsonl"),
    "purpleair": ("source.purpleair", {"interval": 300.0, "bbox": (-122.5, 38.0, -121.7, 37.2)}),
    "earliest": ("source.times.earliest", "2010-01-01T00:00:00Z"),
    "latest": ("source.times.latest", "2030-01-01T00:00:00Z"),
    "time_skew": ("source.times.skew", 60),
    "source_limits": ("source.limits", {"deadline": 30.0, "max_bytes": 1_000_000}),
    "validate": ("cleaning.validation.enabled", False),
    "ranges": ("cleaning.validation.ranges", {"humidity": (0.0, 90.0)}),
    "channels": ("cleaning.channels.enabled", False),
    "channel_abs": ("cleaning.channels.abs_limit", 10.0),
    "channel_rel": ("cleaning.channels.rel_limit", 0.5),
    "channel_zero": ("cleaning.channels.zero_other", 3.0),
    "channel_zero_run": ("cleaning.channels.zero_run", 20),
    "channel_zero_seconds": ("cleaning.channels.zero_seconds", 600),
    "channel_flags": ("cleaning.channels.use_flags", False),
    "flatline": ("cleaning.flatline.readings", 30),
    "flatline_seconds": ("cleaning.flatline.seconds", 600),
    "holdoff_seconds": ("detection.holdoff_seconds", 600),
    "report_faults": ("detection.faults", False),
    "impute_fields": ("cleaning.imputation.fields", ("humidity", "pm1.0_cf_1")),
    "window": ("cleaning.imputation.window", 5),
    "strategy": ("cleaning.imputation.strategy", "median"),
    "epa": ("cleaning.epa.enabled", False),
    "epa_max": ("cleaning.epa.max", 200.0),
    "epa_extended": ("cleaning.epa.extended", False),
    "aqi": ("cleaning.epa.aqi", False),
    "gaps": ("cleaning.gaps.mode", "fill"),
    "interval": ("cleaning.gaps.interval", 60),
    "offline_after": ("cleaning.gaps.offline_after", 7200),
    "max_fill": ("cleaning.gaps.max_fill", 30),
    "clock": ("cleaning.gaps.clock", "system"),
    "scale": ("cleaning.scaling.fields", ("pm1.0_cf_1",)),
    "scale_window": ("cleaning.scaling.window", 30),
    "threshold": ("detection.threshold", 0.8),
    "detector": ("detection.detector", "hst"),
    "features": ("detection.features", ("humidity",)),
    "spatial": ("spatial.enabled", False),
    "spatial_field": ("spatial.field", "pm2.5_epa"),
    "spatial_window": ("spatial.window", 300),
    "spatial_grace": ("spatial.grace", 3600),
    "area_km": ("spatial.area_km", 40.0),
    "radius_km": ("spatial.radius_km", 5.0),
    "min_neighbours": ("spatial.min_neighbours", 4),
    "neighbour_rel": ("spatial.rel_limit", 0.4),
    "neighbour_open": ("spatial.open_windows", 2),
    "neighbour_of": ("spatial.of_windows", 6),
    "drift_level": ("spatial.drift_level", 8.0),
    "join_abs": ("spatial.join_abs", 7.0),
    "drift_ratio": ("spatial.drift_ratio", 0.25),
    "drift_windows": ("spatial.drift_windows", 30),
    "drift_days": ("spatial.drift_days", 2),
    "neighbour_abs": ("spatial.abs_limit", 20.0),
    "neighbour_z": ("spatial.z_limit", 3.0),
    "neighbour_min_spread": ("spatial.min_spread", 2.0),
    "rise_abs": ("spatial.rise_abs", 15.0),
    "rise_ratio": ("spatial.rise_ratio", 2.0),
    "event_share": ("spatial.event_share", 0.6),
    "min_rising": ("spatial.min_rising", 4),
    "baseline_alpha": ("spatial.baseline_alpha", 0.2),
    "baseline_windows": ("spatial.baseline_windows", 5),
    "limits": ("detection.limits", {"pm1.0_cf_1": (0.0, 500.0), "humidity": (0.0, 100.0)}),
    "n_trees": ("detection.n_trees", 5),
    "height": ("detection.height", 6),
    "window_size": ("detection.window_size", 36),
    "seed": ("detection.seed", 3),
    "output": ("outputs.anomalies", "anomalies.jsonl"),
    "dead_letters": ("outputs.dead_letters", "dead.jsonl"),
    "readings": ("outputs.readings", "readings.jsonl"),
    "events": ("outputs.events", "events.jsonl"),
    "totals": ("outputs.totals", TestingSink([])),  # Python only
    "incidents": ("outputs.incidents", "incidents.jsonl"),
    "incident_clear": ("outputs.incident_clear", 3600),
    "database": ("outputs.database", {"retries": 3, "timeout": 2.0}),
    "webhook": ("outputs.webhook.url", "https://alerts.example/hook"),
    "webhook_dead_letters": ("outputs.webhook.dead_letters", "undelivered.jsonl"),
    "sample": ("outputs.sample.size", 5),
    "sample_by": ("outputs.sample.by", "global"),
    "sample_seed": ("outputs.sample.seed", 4),
    "sample_path": ("outputs.sample.path", "sample.jsonl"),
    "key": ("run.key", "global"),
    "batch_size": ("run.batch_size", 500),
    "shards": ("run.shards", 4),
    "progress": ("run.progress", 30.0),
    "gc_threshold": ("run.gc_threshold", 50_000),
}
GROUP_KEYWORDS = {"purpleair", "database", "source_limits"}  # take a table, not one value
GROUP_TABLES = {CHANGED[k][0] for k in GROUP_KEYWORDS}
#: Options that a changed value needs beside it (sample needs a path, features their limits).
NEEDS = {"sample": ("sample_path",), "features": ("limits",)}


def toml_value(value) -> str:
    """A value in TOML syntax, written independently of the code under test."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_text(settings: dict[str, object]) -> str:
    """A TOML file from `{"table.key": value}` (a `{"table": {key: value}}` entry sets a table)."""
    tables: dict[str, dict[str, object]] = {}
    for location, value in settings.items():
        if location in GROUP_TABLES:
            tables.setdefault(location, {}).update(value)
        else:
            table, key = location.rsplit(".", 1)
            tables.setdefault(table, {})[key] = value
    return "".join(
        f"[{table}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in items.items())
        for table, items in tables.items()
    )


def leaves(tables, path=()):
    """Every option of a tree of tables as `{"table.key": value}`."""
    found = {}
    for key, value in tables.items():
        if isinstance(value, dict) and (*path, key) in GROUP_PATHS:
            found.update(leaves(value, (*path, key)))
        else:
            found[".".join((*path, key))] = value
    return found


def _group_paths(config, path=()):
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            yield (*path, spec.name)
            yield from _group_paths(value, (*path, spec.name))


GROUP_PATHS = set(_group_paths(FlowConfig()))


def expected_leaves(keyword: str) -> dict[str, object]:
    location, value = CHANGED[keyword]
    if keyword in GROUP_KEYWORDS:
        return {f"{location}.{k}": v for k, v in value.items()}
    return {location: value}


def test_every_keyword_of_the_flat_signature_is_still_an_option():
    assert set(FLAT_KEYWORDS) <= set(KEYWORDS)
    assert set(CHANGED) == set(KEYWORDS), "give each new keyword a changed value in CHANGED"


def test_each_keyword_sets_its_own_option_and_nothing_else():
    default = leaves(tables_of(FlowConfig()))
    got = leaves(tables_of(resolve(**{k: v for k, (_where, v) in CHANGED.items()})))
    assert got.keys() == default.keys()
    want = {}
    for keyword in CHANGED:
        want.update(expected_leaves(keyword))
    assert {k: v for k, v in got.items() if v != default[k]} == want


@pytest.mark.parametrize("keyword", sorted(set(CHANGED) - {"totals"}))
def test_every_option_resolves_the_same_from_a_file_and_from_its_keyword(tmp_path, keyword):
    location, value = CHANGED[keyword]
    others = {k: CHANGED[k][1] for k in NEEDS.get(keyword, ())}
    path = tmp_path / "flow.toml"
    settings = {location: value, **{CHANGED[k][0]: v for k, v in others.items()}}
    path.write_text(toml_text(settings))
    from_file = resolve(path)
    assert from_file == resolve(**{keyword: value}, **others)
    assert leaves(tables_of(from_file)).items() >= expected_leaves(keyword).items()


def test_keywords_override_the_file_one_option_at_a_time(tmp_path):
    path = tmp_path / "flow.toml"
    path.write_text(
        toml_text(
            {
                "detection.threshold": 0.8,
                "detection.n_trees": 4,
                "source.purpleair": {"interval": 300.0, "max_polls": 2},
            }
        )
    )
    config = resolve(path, threshold=0.9, purpleair={"max_polls": 5})
    assert config.detection.threshold == 0.9 and config.detection.n_trees == 4
    assert config.source.purpleair.interval == 300.0 and config.source.purpleair.max_polls == 5
    assert resolve(path) == resolve(
        threshold=0.8, n_trees=4, purpleair=dict(interval=300.0, max_polls=2)
    )


def test_values_take_their_canonical_form():
    config = resolve(threshold=1, impute_fields=["humidity"], limits={"pm1.0_cf_1": [0, 900]})
    assert config.detection.threshold == 1.0 and type(config.detection.threshold) is float
    assert config.cleaning.imputation.fields == ("humidity",)
    assert config.detection.limits == {"pm1.0_cf_1": (0.0, 900.0)}
    assert resolve(gaps=False).cleaning.gaps.mode is None  # TOML's way of saying None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.detection.threshold = 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"thresold": 0.8}, "thresold: unknown option; did you mean threshold?"),
        (
            {"anomalies": "a.jsonl"},
            "anomalies: unknown option; [outputs] anomalies is keyword output",
        ),
        (
            {"threshold": "high"},
            "[detection] threshold: 'high' is the wrong type; allowed: a number",
        ),
        ({"threshold": 1.5}, "[detection] threshold: 1.5 is out of range; allowed: from 0 to 1"),
        ({"window": 0}, "[cleaning.imputation] window: 0 is out of range; allowed: at least 1"),
        (
            {"strategy": "mode"},
            "[cleaning.imputation] strategy: 'mode' is not allowed; "
            "allowed: 'mean' or 'median' or 'last'",
        ),
        (
            {"gaps": "fil"},
            "[cleaning.gaps] mode: 'fil' is not allowed; allowed: 'events' or 'fill' or false",
        ),
        ({"shards": 1.5}, "[run] shards: 1.5 is the wrong type; allowed: an integer"),
        ({"validate": "yes"}, "[cleaning.validation] enabled: 'yes' is the wrong type"),
        ({"scale": "pm1.0_cf_1"}, "allowed: a list of strings"),
        ({"ranges": {"x": (0,)}}, "allowed: a table of lists of 2 numbers"),
        ({"sample": 3}, "[outputs.sample] path: unset; allowed: a file path when size > 0"),
        (
            {"offline_after": 60, "interval": 120},
            "[cleaning.gaps] offline_after: 60 is not allowed",
        ),
        ({"clock": "wall"}, "allowed: 'event' or 'system' or a function"),
        ({"features": ("humidity",), "detector": "hst"}, "[detection] no limits for features"),
        ({"features": ("a", "b")}, "[detection] features: hst_ensemble scores one"),
        ({"detector": "hsst"}, "[detection] detector: 'hsst' is not allowed; allowed: 'hst' or"),
        ({"webhook": "ftp://x"}, "[outputs.webhook] url: 'ftp://x' is not allowed"),
        ({"purpleair": {"interval": 5}}, "[source.purpleair] interval 5.0 s is below 60 s"),
        ({"purpleair": {"backof": {}}}, "[source.purpleair.backof]: unknown table; did you mean"),
        ({"purpleair": 3}, "purpleair: 3 is not a mapping of options"),
        ({"engine": "columns"}, "[run] engine: removed: the flow has one engine (columns)"),
    ],
)
def test_a_bad_option_names_its_table_key_value_and_what_is_allowed(options, message):
    with pytest.raises(ConfigError) as raised:
        resolve(**options)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("value", ["readings", "columns"])
def test_a_removed_option_in_a_file_says_it_was_removed(value):
    with pytest.raises(ConfigError) as raised:
        resolve({"run": {"engine": value, "batch_size": 10}})
    assert str(raised.value) == "[run] engine: removed: the flow has one engine (columns)"


def test_build_flow_refuses_a_bad_option_before_it_opens_the_source(tmp_path):
    missing = tmp_path / "never-read.jsonl"
    with pytest.raises(ConfigError, match=r"\[run\] batch_size: 0 is out of range"):
        build_flow(str(missing), batch_size=0)
    with pytest.raises(ConfigError, match=r"\[source\] path: no such file: .*never-read.jsonl"):
        build_flow(str(missing))


def test_bytewax_run_shows_a_configuration_error_as_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "dataflows.air_quality:build_flow(thresold=0.8)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        "configuration error: thresold: unknown option; did you mean threshold?"
    ]


@pytest.mark.parametrize(
    ("location", "keyword"),
    [
        ("cleaning.gaps.mode", "gaps"),
        ("run.progress", "progress"),
        ("run.gc_threshold", "gc_threshold"),
        ("detection.seed", "seed"),
    ],
)
def test_false_in_a_file_is_none_from_python(tmp_path, location, keyword):
    path = tmp_path / "flow.toml"
    path.write_text(toml_text({location: False}))
    assert resolve(path) == resolve(**{keyword: None})
    assert leaves(tables_of(resolve(path)))[location] is None
