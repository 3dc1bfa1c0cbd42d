"""The any-time-series flow: CSV in, scored CSV out; no look-ahead; 1 and 2 workers agree."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bytewax.testing import cluster_main, run_main

from core.errors import ConfigError
from dataflows.series import build_flow
from detectors.catalog import DEFAULT_DETECTOR, DETECTORS, make_detector
from tests.conftest import ROOT

HEADER = ["timestamp", "value", "imputed", "anomaly_score", "is_anomaly"]


def write_csv(path: Path, rows, header=("timestamp", "value")) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def stamp(i: int) -> str:
    """Row i's timestamp: ISO 8601, one a minute."""
    return f"2026-04-01 {i // 60:02d}:{i % 60:02d}:00"


def series(n: int = 400, seed: int = 3) -> list[str]:
    """A noisy level with a missing value every 37th row and spikes at 250 and 330."""
    x = 20.0 + np.random.default_rng(seed).normal(0.0, 1.0, n)
    x[250 % n] += 40.0
    x[330 % n] -= 35.0
    return ["" if i % 37 == 5 else f"{v:.3f}" for i, v in enumerate(x)]


def run(in_path: Path, out_path: Path, workers: int = 1, **options) -> list[dict[str, str]]:
    flow = build_flow(in_path, out_path, **options)
    if workers == 1:
        run_main(flow)
    else:
        cluster_main(flow, [], 0, worker_count_per_proc=workers)
    header, rows = read_csv(out_path)
    assert header[-5:] == HEADER
    return rows


@pytest.mark.parametrize("detector", DETECTORS)
def test_one_row_per_input_row_scores_in_unit_interval(tmp_path, detector):
    values = series()
    src = write_csv(tmp_path / "in.csv", [(stamp(i), v) for i, v in enumerate(values)])
    rows = run(src, tmp_path / "out.csv", detector=detector)
    assert [r["timestamp"] for r in rows] == [stamp(i) for i in range(len(values))]
    assert [r["value"] for r in rows] == values
    scores = [float(r["anomaly_score"]) for r in rows if r["anomaly_score"]]
    assert scores and all(0.0 <= s <= 1.0 for s in scores)
    assert {r["is_anomaly"] for r in rows} <= {"true", "false"}


def test_imputed_is_the_mean_of_the_last_ten_observed(tmp_path):
    values = series()
    src = write_csv(tmp_path / "in.csv", [(i, v) for i, v in enumerate(values)])
    rows = run(src, tmp_path / "out.csv", detector="zscore")
    observed: list[float] = []
    for text, row in zip(values, rows, strict=True):
        if text:
            observed.append(float(text))
            assert float(row["imputed"]) == float(text)
        elif observed:
            assert math.isclose(
                float(row["imputed"]), float(np.mean(observed[-10:])), rel_tol=1e-12
            )
        else:
            assert row["imputed"] == "" and row["anomaly_score"] == ""


def test_zscore_scores_equal_numpy_bands_and_flag_the_spikes(tmp_path):
    """zscore: score = erf(|x − mean| / std / √2) over the previous 60 values."""
    x = (20.0 + np.random.default_rng(4).normal(0.0, 1.0, 300)).round(3)
    x[200] += 40.0
    src = write_csv(tmp_path / "in.csv", [(i, f"{v:.3f}") for i, v in enumerate(x)])
    rows = run(src, tmp_path / "out.csv", detector="zscore")
    for i in range(10, 300):
        past = x[max(0, i - 60) : i]
        z = abs(x[i] - past.mean()) / past.std(ddof=1)
        assert math.isclose(
            float(rows[i]["anomaly_score"]), math.erf(z / math.sqrt(2)), abs_tol=1e-9
        )
    assert all(rows[i]["anomaly_score"] == "" for i in range(10))
    flagged = [i for i, r in enumerate(rows) if r["is_anomaly"] == "true"]
    assert 200 in flagged and len(flagged) <= 3


@pytest.mark.parametrize("detector", ["knn_cad", "scaled_hst"])
def test_no_look_ahead(tmp_path, detector):
    """Changing the future leaves every earlier score unchanged."""
    values = series()
    changed = values[:300] + ["999"] * 100
    a = run(
        write_csv(tmp_path / "a.csv", list(enumerate(values))),
        tmp_path / "a_out.csv",
        detector=detector,
    )
    b = run(
        write_csv(tmp_path / "b.csv", list(enumerate(changed))),
        tmp_path / "b_out.csv",
        detector=detector,
    )
    assert a[:300] == b[:300]
    assert a[300:] != b[300:]


def test_keys_are_independent_and_two_workers_agree(tmp_path):
    rows = []
    for i in range(300):
        for key in ("a", "b", "c"):
            base = {"a": 5.0, "b": 50.0, "c": 500.0}[key]
            rows.append((i, f"{base + (i * 7 % 11) / 10:.2f}", key, "ignored"))
    src = write_csv(tmp_path / "in.csv", rows, header=("timestamp", "value", "key", "other"))
    one = run(src, tmp_path / "one.csv", 1, detector="knn_cad")
    two = run(src, tmp_path / "two.csv", 2, detector="knn_cad")

    def per_key(out):
        keyed: dict[str, list[dict[str, str]]] = {}
        for r in out:
            keyed.setdefault(r["key"], []).append(r)
        return keyed

    assert per_key(one) == per_key(two)
    assert [r["timestamp"] for r in per_key(one)["b"]] == [str(i) for i in range(300)]
    alone = run(
        write_csv(tmp_path / "b.csv", [(t, v) for t, v, k, _ in rows if k == "b"]),
        tmp_path / "b_out.csv",
        detector="knn_cad",
    )
    strip = [{k: v for k, v in r.items() if k != "key"} for r in per_key(one)["b"]]
    assert strip == alone


def test_a_configuration_error_stops_the_build_with_one_line(tmp_path):
    good = write_csv(tmp_path / "v.csv", [(1, 2)])
    bad_header = write_csv(tmp_path / "h.csv", [(1, 2)], header=("timestamp", "v"))
    latin = tmp_path / "l.csv"
    latin.write_bytes(b"timestamp,valu\xe9\n1,2\n")
    cases = [
        ((bad_header, "o.csv"), {}, "h.csv: the header has no 'value' column: ['timestamp', 'v']"),
        ((tmp_path / "none.csv", "o.csv"), {}, "none.csv: No such file or directory"),
        ((latin, "o.csv"), {}, "l.csv: the header is not UTF-8 text (invalid continuation byte)"),
        ((good, "o.csv"), {"detector": "nope"}, "detector 'nope': unknown detector"),
        ((good, "o.csv"), {"shards": 0}, "batch_size and shards must be at least 1"),
    ]
    for args, options, message in cases:
        with pytest.raises(ConfigError) as failure:
            build_flow(*args, **options)
        assert message in str(failure.value) and "\n" not in str(failure.value)
    target = f"dataflows.series:build_flow({str(tmp_path / 'none.csv')!r}, 'o.csv')"
    done = subprocess.run(
        [sys.executable, "-m", "bytewax.run", target], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"configuration error: cannot read {tmp_path / 'none.csv'}: No such file or directory"
    ]


def test_command_line(tmp_path):
    src = write_csv(tmp_path / "in.csv", [(i, v) for i, v in enumerate(series(150))])
    out = tmp_path / "out.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bytewax.run",
            f"dataflows.series:build_flow({str(src)!r}, {str(out)!r})",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    header, rows = read_csv(out)
    assert header == HEADER and len(rows) == 150


def test_default_detector_flags_a_spike_and_a_level_shift_once_each(tmp_path):
    """The default (`ranked_shape`): scores in [0, 1), the flow's scores equal the detector's
    own, and after a long normal stretch only the faults alarm: the spike once, the level shift
    at its start and at most once more within a period of it (the shifted stretch grows into a
    subsequence ten times rarer than the first alarm: the hold-off re-arms)."""
    rng = np.random.default_rng(6)
    x = (20.0 + 3.0 * np.sin(np.arange(3000) / 50.0) + rng.normal(0.0, 1.0, 3000)).round(3)
    x[2000] += 40.0  # a spike
    x[2500:] += 15.0  # a level shift
    src = write_csv(tmp_path / "in.csv", [(i, f"{v:.3f}") for i, v in enumerate(x)])
    rows = run(src, tmp_path / "out.csv")
    detector = make_detector(DEFAULT_DETECTOR, "value")
    want = [detector.score_then_learn({"value": float(f"{v:.3f}")})[0] for v in x]
    got = [float(r["anomaly_score"]) if r["anomaly_score"] else None for r in rows]
    assert got == want
    assert all(0.0 <= s < 1.0 for s in got if s is not None)
    late = [i for i, r in enumerate(rows) if r["is_anomaly"] == "true" and i >= 1500]
    assert late[:1] == [2000] and 2500 <= late[1] < 2510
    assert len(late) <= 3 and all(2500 <= i < 2500 + 315 for i in late[1:])  # period 2π·50


def test_hold_off_in_seconds_uses_the_rows_timestamps(tmp_path):
    rows = list(enumerate(series()))
    src = write_csv(tmp_path / "in.csv", [(stamp(i), v) for i, v in rows])
    alarms = {}
    for name, options in {
        "readings": {"holdoff": 1000},
        "seconds": {"holdoff": 1000, "holdoff_seconds": 60.0},
    }.items():
        out = run(src, tmp_path / f"{name}.csv", rearm=math.inf, **options)
        alarms[name] = [i for i, r in enumerate(out) if r["is_anomaly"] == "true"]
    assert 250 in alarms["readings"] and 330 not in alarms["readings"]  # held: 80 rows later
    assert {250, 330} <= set(alarms["seconds"])  # one minute of hold-off: 80 minutes later
