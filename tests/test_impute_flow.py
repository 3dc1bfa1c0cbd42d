"""The imputation tutorial flow against numpy, on 1 and 2 workers and from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
from bytewax.testing import TestingSink, cluster_main, run_main

from core.errors import ConfigError
from dataflows.impute import build_flow
from tests.conftest import ROOT


def run(workers: int = 1, **options) -> list[dict]:
    out: list[dict] = []
    flow = build_flow(output=TestingSink(out), **options)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    return out


def by_key(records) -> dict[str, list[dict]]:
    keyed = defaultdict(list)
    for r in records:
        keyed[r["key"]].append(r)
    return dict(keyed)


def oracle(values: list, window: int, reduce) -> list:
    """Brute force: reduce the last `window` observed values before each missing one."""
    out = []
    for i, v in enumerate(values):
        if v is not None:
            out.append(v)
            continue
        seen = [x for x in values[:i] if x is not None][-window:]
        out.append(float(reduce(np.array(seen, dtype=float))) if seen else None)
    return out


@pytest.mark.parametrize(
    ("strategy", "reduce"), [("mean", np.mean), ("median", np.median), ("last", lambda a: a[-1])]
)
def test_flow_imputes_like_numpy(strategy, reduce):
    keyed = by_key(run(keys=3, n=100, window=10, strategy=strategy, seed=0))
    assert sorted(keyed) == ["sensor-0", "sensor-1", "sensor-2"]
    for key, records in keyed.items():
        assert [r["index"] for r in records] == list(range(100)), key
        values = [r["value"] for r in records]
        assert [i for i, v in enumerate(values) if v is None] == list(range(0, 100, 5))
        assert all(isinstance(v, int) and 0 <= v <= 10 for v in values if v is not None)
        got = [r["imputed"] for r in records]
        want = oracle(values, 10, reduce)
        assert got[0] is None and want[0] is None
        assert np.allclose(got[1:], want[1:], rtol=1e-12, atol=0)


def test_values_come_from_the_seed():
    first = by_key(run(seed=0))
    again = by_key(run(seed=0))
    other = by_key(run(seed=1))
    assert first == again
    assert [r["value"] for r in first["sensor-0"]] != [r["value"] for r in other["sensor-0"]]
    # the keys draw independent streams
    assert [r["value"] for r in first["sensor-0"]] != [r["value"] for r in first["sensor-1"]]
    # all eleven integers 0..10 turn up
    values = {r["value"] for recs in first.values() for r in recs} - {None}
    assert values == set(range(11))


def test_two_workers_give_the_same_records_in_the_same_order_per_key():
    one, two = run(1, keys=5, n=300), run(2, keys=5, n=300)
    assert by_key(one) == by_key(two)
    assert len(one) == len(two) == 1500


@pytest.mark.parametrize("workers", ["1", "2"])
def test_command_line_prints_json_lines(workers):
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "dataflows.impute:flow", "-w", workers],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(records) == 300
    assert by_key(records) == by_key(run())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keys": 0}, "need keys ≥ 1, n ≥ 0, batch_size ≥ 1"),
        ({"window": 0}, "window must be at least 1"),
        ({"strategy": "mode"}, "unknown strategy 'mode'"),
    ],
)
def test_a_bad_option_is_a_one_line_configuration_error(options, message):
    """The tutorial's input is generated: only its options can stop it, when it is built."""
    with pytest.raises(ConfigError, match=message) as failure:
        build_flow(**options)
    assert "\n" not in str(failure.value)
