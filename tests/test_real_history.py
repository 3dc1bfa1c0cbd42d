"""The real-history evaluation's figures, on a hand-made history whose answers are counted here
by hand: EPA-rule breaks of the raw channels, the page figure per clean sensor-month,
re-openings, and the hotspot's winter-evening split."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from evaluation.real_history import incident_spans, read_raw, reopenings, report


def t(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


FIELDS = ["sensor_index", "last_seen", "pm2.5_cf_1_a", "pm2.5_cf_1_b"]


def history(tmp_path):
    rows = [
        [1, t("2024-01-10T12:00:00"), 10.0, 40.0],  # breaks the EPA rule (30 > 5, 1.2 > 0.7)
        [1, t("2024-01-10T12:10:00"), 10.0, 14.0],  # does not (4 <= 5)
        [1, t("2024-02-10T12:00:00"), 10.0, 10.5],
        [156171, t("2024-01-05T21:00:00"), 60.0, 58.0],  # 16:00 in New York
        [156171, t("2024-01-05T21:10:00"), None, 58.0],
    ]
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(json.dumps({"fields": FIELDS, "data": [r]}) for r in rows) + "\n")
    return path, rows


def test_the_figures_by_hand(tmp_path):
    path, rows = history(tmp_path)
    raw = read_raw(path)
    assert raw.readings == 5 and raw.breaks == {(1, rows[0][1])}
    assert raw.sensor_months == 3 and raw.clean_months() == 2  # 1 in Feb, 156171 in Jan
    alerts = [
        {"sensor_index": 1, "time": iso(rows[0][1]), "kind": "sensor_fault",
         "reasons": ["channel_disagreement"]},
        {"sensor_index": 156171, "time": iso(rows[3][1]), "kind": "local_source",
         "reasons": ["above_neighbours"], "neighbours": {"ratio": 4.0}},
        {"sensor_index": 156171, "time": iso(rows[4][1]), "kind": "anomaly",
         "reasons": ["below_neighbours"]},
    ]  # fmt: skip

    def incident(id_, state, when, started, kind="sensor_fault", reasons=("flatline",)):
        return {"id": id_, "state": state, "kind": kind, "time": iso(when),
                "started": iso(started), "reasons": list(reasons), "sensor_index": 1}  # fmt: skip

    a, b = t("2024-02-10T00:00:00"), t("2024-01-10T00:00:00")
    incidents = [
        incident("x", "open", a, a),  # a page: February has no break
        incident("x", "close", a + 600, a),
        incident("y", "open", a + 1000, a + 1000),  # re-opened 400 s after: within 1,800
        incident("z", "open", b, b),  # January: the sensor broke the rule that month
        incident("w", "open", b, b, reasons=("channel_zero",)),  # the channels: not a page
    ]
    text, figures = report(raw, alerts, incidents, 1800)
    assert figures["pages"] == 2 / 2  # x and y, over the 2 clean sensor-months
    assert figures["channel_recall"] == 1.0
    assert figures["hotspot_local_share"] == 0.5 and figures["hotspot_sensor_fault"] == 0
    assert reopenings(incident_spans(incidents), 1800) == {"sensor_fault": 1}
    assert reopenings(incident_spans(incidents), 300) == {}
    assert "  156171 episodes    0 alerts     1   x4.0 |" in text
