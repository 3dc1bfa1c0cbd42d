"""The typed configuration: every keyword sets its option, values are checked when built, and a
bad option is one actionable line, before any data is read."""

from __future__ import annotations

import dataclasses
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

#: A value other than the default for every keyword (a new option needs one here).
CHANGED = {
    "source": "other.jsonl",
    "purpleair": {"interval": 300.0, "bbox": (-122.5, 38.0, -121.7, 37.2)},
    "validate": True,
    "ranges": {"humidity": (0.0, 90.0)},
    "impute_fields": ("humidity", "pm1.0_cf_1"),
    "window": 5,
    "strategy": "median",
    "epa": False,
    "epa_max": 200.0,
    "gaps": "fill",
    "interval": 60,
    "offline_after": 7200,
    "clock": "system",
    "scale": ("pm1.0_cf_1",),
    "scale_window": 30,
    "threshold": 0.8,
    "features": ("pm1.0_cf_1", "humidity"),
    "limits": {"pm1.0_cf_1": (0.0, 500.0), "humidity": (0.0, 100.0)},
    "n_trees": 5,
    "height": 6,
    "window_size": 36,
    "seed": 3,
    "output": "anomalies.jsonl",
    "dead_letters": "dead.jsonl",
    "readings": "readings.jsonl",
    "events": "events.jsonl",
    "totals": TestingSink([]),
    "webhook": "https://alerts.example/hook",
    "webhook_dead_letters": "undelivered.jsonl",
    "sample": 5,
    "sample_by": "global",
    "sample_seed": 4,
    "sample_path": "sample.jsonl",
    "key": "global",
    "batch_size": 500,
    "shards": 4,
    "progress": 30.0,
    "gc_threshold": 50_000,
}


def leaves(tables, path=()):
    """Every option of a tree of tables as `{(table, ..., key): value}`."""
    found = {}
    for key, value in tables.items():
        if isinstance(value, dict) and (*path, key) in GROUP_PATHS:
            found.update(leaves(value, (*path, key)))
        else:
            found[(*path, key)] = value
    return found


def _group_paths(config, path=()):
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        if dataclasses.is_dataclass(value):
            yield (*path, spec.name)
            yield from _group_paths(value, (*path, spec.name))


GROUP_PATHS = set(_group_paths(FlowConfig()))


def test_every_keyword_of_the_flat_signature_is_still_an_option():
    assert set(FLAT_KEYWORDS) <= set(KEYWORDS)
    assert set(CHANGED) == set(KEYWORDS), "give each new keyword a changed value in CHANGED"


def test_each_keyword_sets_its_own_option_and_nothing_else():
    default = leaves(tables_of(FlowConfig()))
    got = leaves(tables_of(resolve(**CHANGED)))
    assert got.keys() == default.keys()
    changed = {path for path in got if got[path] != default[path]}
    want = set()
    for keyword, value in CHANGED.items():
        target = KEYWORDS[keyword]
        where = (*target.path, target.name)
        if target.group:
            sub = value if isinstance(value, dict) else {target.shorthand: value}
            for key, item in sub.items():
                want.add((*where, key))
                assert got[(*where, key)] == item
        else:
            want.add(where)
            assert got[where] == value, keyword
    assert changed == want


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
        ({"offline_after": 60}, "[cleaning.gaps] offline_after: 60 is not allowed"),
        ({"clock": "wall"}, "allowed: 'event' or 'system' or a function"),
        ({"features": ("humidity",)}, "[detection] no limits for features ['humidity']"),
        ({"webhook": "ftp://x"}, "[outputs.webhook] url: 'ftp://x' is not allowed"),
        ({"purpleair": {"interval": 5}}, "[source.purpleair] interval 5.0 s is below 60 s"),
        ({"purpleair": {"backof": {}}}, "[source.purpleair.backof]: unknown table; did you mean"),
        ({"purpleair": 3}, "purpleair: 3 is not a mapping of options"),
    ],
)
def test_a_bad_option_names_its_table_key_value_and_what_is_allowed(options, message):
    with pytest.raises(ConfigError) as raised:
        resolve(**options)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_build_flow_refuses_a_bad_option_before_it_opens_the_source(tmp_path):
    missing = tmp_path / "never-read.jsonl"
    with pytest.raises(ConfigError, match=r"\[run\] batch_size: 0 is out of range"):
        build_flow(str(missing), batch_size=0)


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
