"""Precision, recall and delay of a flag list against hand-made labels."""

import json

from evaluation.detection import Episode, evaluate, format_report, load_flags, load_labels, main

EPISODES = [
    Episode(1, "spike", 100, 100),
    Episode(1, "drift", 200, 500),
    Episode(2, "stuck", 100, 300),
    Episode(3, "dropout", 0, 50),
]


def test_counts_true_flags_recall_and_delay():
    flags = [(1, 100), (1, 101), (1, 350), (1, 400), (2, 99), (2, 301), (4, 100)]
    report = evaluate(flags, EPISODES)
    assert (report.flags, report.true_flags) == (7, 3)
    assert report.precision == 3 / 7
    spike, drift, stuck = (report.per_fault[k] for k in ("spike", "drift", "stuck"))
    assert (spike.detected, spike.delays, spike.flagged_readings) == (1, [0], 1)
    assert (drift.detected, drift.delays, drift.flagged_readings) == (1, [150], 2)
    assert (stuck.episodes, stuck.detected) == (1, 0)
    assert report.recall == 2 / 3  # the dropout is left out
    assert report.per_fault["dropout"].episodes == 1
    assert "precision: 0.429" in format_report(report)


def test_files_round_trip(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "sensor_index,fault,start,end,start_iso,end_iso\n"
        "7,spike,1775001600,1775001720,2026-04-01T00:00:00Z,2026-04-01T00:02:00Z\n"
    )
    flags = tmp_path / "a.jsonl"
    flags.write_text(json.dumps({"sensor_index": 7, "time": "2026-04-01T00:02:00Z"}) + "\n")
    assert load_labels(labels) == [Episode(7, "spike", 1775001600, 1775001720)]
    assert load_flags(flags) == [(7, 1775001720)]
    assert main([str(flags), "--labels", str(labels)]) == 0
    assert "precision: 1.000" in capsys.readouterr().out
