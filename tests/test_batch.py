"""The batch path against an independent reference: json + scikit-learn KNNImputer + river."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from river.anomaly import HalfSpaceTrees
from sklearn.impute import KNNImputer

from data import simulate
from dataflows.batch import main, run_batch
from tests.conftest import write_lines

ID = ("sensor_index", "last_seen")


@pytest.fixture(scope="module")
def polls_file(tmp_path_factory) -> Path:
    """5 simulated sensors over 8 hours: nulls and spikes (about 1,200 rows)."""
    out = tmp_path_factory.mktemp("batch")
    polls, _labels = simulate.write(simulate.generate(seed=4, n_sensors=5, hours=8), out)
    return polls


def reference(path: Path, threshold: float = 0.7, key: str = "sensor"):
    """Rows as dicts, the KNN-imputed numeric table, and (sensor, time, score) anomalies."""
    rows = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        for row in doc["data"]:
            rec = dict(zip(doc["fields"], row, strict=True))
            rec.setdefault("last_seen", doc["data_time_stamp"])
            rows.append(rec)
    columns = [c for c in rows[0] if c not in ID and any(r[c] is not None for r in rows)]
    X = np.array([[np.nan if r[c] is None else r[c] for c in columns] for r in rows], float)
    filled = KNNImputer(n_neighbors=5).fit_transform(X)
    pm = columns.index("pm1.0_cf_1")
    models, found = {}, set()
    for r, value in zip(rows, filled[:, pm], strict=True):
        k = r["sensor_index"] if key == "sensor" else 0
        model = models.setdefault(
            k,
            HalfSpaceTrees(
                n_trees=10, height=8, window_size=72, limits={"pm1.0_cf_1": (0, 1200)}, seed=11
            ),
        )
        n_learnt = models.setdefault(("n", k), 0)
        score = model.score_one({"pm1.0_cf_1": value})
        model.learn_one({"pm1.0_cf_1": value})
        models[("n", k)] = n_learnt + 1
        if n_learnt >= 72 and score > threshold:
            found.add((r["sensor_index"], r["last_seen"], score))
    return rows, columns, X, filled, found


def test_imputation_and_anomalies_equal_the_reference(polls_file):
    rows, columns, X, filled, want = reference(polls_file)
    result = run_batch(polls_file)
    assert result.columns == columns
    assert len(result.readings) == len(rows) and result.dead_letters == []
    got = np.array([[r.values[c] for c in columns] for r in result.readings], float)
    np.testing.assert_allclose(got, filled, rtol=1e-12)
    for reading, before in zip(result.readings, X, strict=True):
        assert reading.imputed == [c for c, v in zip(columns, before, strict=True) if np.isnan(v)]
    assert np.isnan(X).any()  # the fixture does have gaps to fill
    assert len(want) >= 2
    assert {(a["sensor_index"], a["time"], a["score"]) for a in result.anomalies} == {
        (s, _iso(t), score) for s, t, score in want
    }


def _iso(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cli_writes_the_flows_anomaly_lines(polls_file, tmp_path, capsys):
    out = tmp_path / "anomalies.jsonl"
    assert main([str(polls_file), "--output", str(out), "--threshold", "0.6"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    _rows, _columns, _X, _filled, want = reference(polls_file, threshold=0.6)
    assert len(lines) == len(want)
    keys = ["sensor_index", "time", "kind", "reasons", "score", "pm1.0_cf_1", "imputed"]
    assert all(list(a) == keys and a["kind"] == "anomaly" for a in lines)
    assert "batch: readings=" in capsys.readouterr().err


def test_global_mode_on_part_of_the_real_snapshot(snapshot_path, tmp_path):
    doc = json.loads(snapshot_path.read_text())
    doc["data"] = doc["data"][:400]
    small = write_lines(tmp_path / "snap.json", [doc])
    rows, columns, X, filled, want = reference(small, key="global")
    result = run_batch(small, key="global")
    got = np.array([[r.values[c] for c in columns] for r in result.readings], float)
    np.testing.assert_allclose(got, filled, rtol=1e-12)
    assert {(a["sensor_index"], a["score"]) for a in result.anomalies} == {
        (s, score) for s, _t, score in want
    }


def test_bad_key_is_refused(polls_file):
    with pytest.raises(ValueError, match="key"):
        run_batch(polls_file, key="region")
