"""The batch-versus-streaming report: imputation and detection quality, agreement, latency.

    python -m evaluation.report OUTDIR                 # shipped data + ../shared snapshot
    python -m evaluation.report OUTDIR --snapshot none --polls P --labels L

Writes OUTDIR/index.html (self-contained: tables and PNGs inlined), OUTDIR/report.md (the same
tables, PNGs linked), the PNGs, and OUTDIR/results.json (every figure, machine-readable).

What it runs: the Bytewax flow (stream: window-mean imputation, per-sensor HalfSpaceTrees) and
`dataflows.batch` (KNN over the whole table, same detector) on the same polls; every detector of
`detectors.catalog` on the stream-cleaned PM; the masking protocol of `evaluation.imputation` on
the simulator data (per sensor, over time; the first `--imputation-sensors` sensors, since batch
KNN's cost grows with the square of the rows) and on the real snapshot (across sensors).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from bytewax.testing import TestingSink, run_main

from dataflows.air_quality import SHIPPED_DATA, build_flow
from dataflows.batch import BatchResult, load, run_batch
from detectors.catalog import DETECTORS, alarm_threshold, make_detector
from evaluation import plots
from evaluation.detection import LABELS, SILENT_FAULTS, Episode, Report, evaluate, load_labels
from evaluation.imputation import (
    Delayed,
    Row,
    Scenario,
    default_methods,
    table_from_readings,
)
from evaluation.imputation import evaluate as evaluate_imputation
from evaluation.progress import StageProgress
from evaluation.thresholds import Scores, best_threshold, f1, in_episodes

SNAPSHOT = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "purpleair_snapshot.json"
)
FEATURE = "pm1.0_cf_1"
SIM_SCENARIOS = (
    Scenario("random 5%", "random", 0.05),
    Scenario("runs of 10 (20 min), 5%", "runs", 0.05, 10),
)
SNAPSHOT_SCENARIOS = (Scenario("random 2%", "random", 0.02),)
#: Seconds each step took on the shipped data (2 busy cores, 2026-12-07), for the progress's
#: time left (only their shares matter); a detector not listed took under a second.
STEP_SECONDS = {"stream flow": 4.0, "batch path": 53.0, "imputation": 94.0, "figures": 17.0}
DETECTOR_SECONDS = {"scaled_hst": 16.0, "knn_cad": 3.0, "ranked": 2.0, "hst_ensemble": 2.0}


def step_weights(detectors: Sequence[str]) -> dict[str, float]:
    """The report's steps in order, with their weights."""
    first, then = list(STEP_SECONDS.items())[:2], list(STEP_SECONDS.items())[2:]
    scoring = [(f"detector {name}", DETECTOR_SECONDS.get(name, 0.5)) for name in detectors]
    return dict(first + scoring + then)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def run_stream(polls: Path) -> tuple[dict[tuple[int, int], dict[str, Any]], float]:
    """Run the Bytewax flow in-process with the example's HalfSpaceTrees (the batch path's
    detector); its cleaned, scored readings by (sensor, time), and the wall time."""
    readings: list[dict[str, Any]] = []
    sinks = {name: TestingSink([]) for name in ("output", "dead_letters", "totals", "events")}
    options = {"readings": TestingSink(readings), "progress": None, "detector": "hst"}
    flow = build_flow(str(polls), **sinks, **options)
    clock = time.perf_counter()
    run_main(flow)
    seconds = time.perf_counter() - clock
    by_key = {
        (r["sensor_index"], _epoch(r["time"])): r for r in readings if not r.get("placeholder")
    }
    return by_key, seconds


@dataclass
class Detection:
    """One line of the detection table."""

    detector: str
    path: str
    choice: str  # "default" or "best F1"
    threshold: float
    report: Report


def detector_scores(name: str, sensors: np.ndarray, pm: Sequence[float | None]) -> np.ndarray:
    """Scores of catalog detector `name` over each sensor's (already imputed) PM, in order."""
    detectors: dict[int, Any] = {}
    out = np.full(len(pm), np.nan)
    for i, (sensor, value) in enumerate(zip(sensors.tolist(), pm, strict=True)):
        det = detectors.get(sensor)
        if det is None:
            det = detectors[sensor] = make_detector(name, FEATURE)
        score, _status = det.score_then_learn({FEATURE: value})
        if score is not None:
            out[i] = score
    return out


def detections(
    scores: dict[tuple[str, str], Scores],
    defaults: dict[str, float],
    episodes: Sequence[Episode],
) -> list[Detection]:
    """Each (detector, path) at its default threshold and at its best-F1 threshold."""
    out = []
    for (name, path), s in scores.items():
        default = defaults[name]
        out.append(Detection(name, path, "default", default, evaluate(s.flags(default), episodes)))
        best, report = best_threshold(s, episodes)
        out.append(Detection(name, path, "best F1", best, report))
    return out


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def _duration(seconds: float) -> str:
    if seconds == 0:
        return "0 s"
    if seconds < 1:
        return f"{seconds * 1000:.2g} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def detection_table(rows: Sequence[Detection], kinds: Sequence[str]) -> list[list[str]]:
    head = ["detector", "path", "threshold", "value", "flags", "precision", "recall", "F1"]
    table = [head + [f"{k}: found (median delay)" for k in kinds]]
    for d in rows:
        r = d.report
        cells = [d.detector, d.path, d.choice, _fmt(d.threshold, 4), str(r.flags)]
        cells += [_fmt(r.precision), _fmt(r.recall), _fmt(f1(r))]
        for k in kinds:
            fs = r.per_fault.get(k)
            if fs is None:
                cells.append("–")
            else:
                delay = "–" if fs.median_delay is None else _duration(fs.median_delay)
                cells.append(f"{fs.detected}/{fs.episodes} ({delay})")
        table.append(cells)
    return table


def imputation_tables(rows: Sequence[Row]) -> dict[tuple[str, str], list[list[str]]]:
    """Per (dataset, scenario): method × field MAE / RMSE, and coverage."""
    grouped: dict[tuple[str, str], dict[str, dict[str, Row]]] = defaultdict(dict)
    for r in rows:
        grouped[(r.dataset, r.scenario)].setdefault(r.method, {})[r.field] = r
    tables = {}
    for key, methods in grouped.items():
        fields = list(next(iter(methods.values())))
        head = ["method"] + [f"{f} MAE / RMSE" for f in fields] + ["filled", "seconds"]
        table = [head]
        for method, per_field in methods.items():
            cells = [method] + [f"{_fmt(r.mae)} / {_fmt(r.rmse)}" for r in per_field.values()]
            filled = sum(r.filled for r in per_field.values())
            hidden = sum(r.hidden for r in per_field.values())
            seconds = next(iter(per_field.values())).seconds
            table.append(cells + [f"{filled}/{hidden}", f"{seconds:.1f}"])
        tables[key] = table
    return tables


def markdown(table: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(lines)


def html_table(table: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pick_sensor(
    sensors: np.ndarray, imputed_weather: np.ndarray, episodes: Sequence[Episode]
) -> int:
    """A sensor worth plotting: most kinds of fault, then most imputed weather readings."""
    kinds: dict[int, set[str]] = defaultdict(set)
    for ep in episodes:
        if ep.fault not in SILENT_FAULTS:
            kinds[ep.sensor_index].add(ep.fault)
    counts: dict[int, int] = defaultdict(int)
    for s in sensors[imputed_weather].tolist():
        counts[s] += 1
    candidates = sorted(set(sensors.tolist()))
    return max(candidates, key=lambda s: (len(kinds[s]), counts[s], -s))


def build_report(
    outdir: str | Path,
    *,
    polls: str | Path = SHIPPED_DATA,
    labels: str | Path = LABELS,
    snapshot: str | Path | None = SNAPSHOT,
    imputation_sensors: int = 20,
    detectors: Sequence[str] = DETECTORS,
    sensor: int | None = None,
    seed: int = 0,
    progress: StageProgress | None = None,
) -> Path:
    """Build the report into `outdir`; return the path of index.html. `progress`: told as each
    step ends (default: a line on stderr per step, with the time left)."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    if progress is None:
        progress = StageProgress("report", step_weights(detectors))
    episodes = load_labels(labels)
    notes: list[str] = []

    # --- both paths on the same polls ------------------------------------------------------
    stream, stream_seconds = run_stream(Path(polls))
    progress.done("stream flow")
    batch: BatchResult = run_batch(polls)
    progress.done("batch path")
    base = batch.readings  # file order
    sensors = np.array([r.sensor_index for r in base], dtype=np.int64)
    times = np.array([r.time for r in base], dtype=np.int64)
    srec = [stream[(r.sensor_index, r.time)] for r in base]
    stream_pm = [rec["values"].get(FEATURE) for rec in srec]
    fault_row = in_episodes(sensors, times, episodes)

    # --- detection -------------------------------------------------------------------------
    scores: dict[tuple[str, str], Scores] = {}
    defaults: dict[str, float] = {}
    nan = float("nan")
    for name in detectors:
        defaults[name] = alarm_threshold(make_detector(name, FEATURE))
        if name == "hst":  # the flow's own scores, and the batch path's
            stream_hst = np.array([nan if rec["score"] is None else rec["score"] for rec in srec])
            batch_hst = np.array([nan if r.score is None else r.score for r in base])
            scores[(name, "stream")] = Scores(sensors, times, stream_hst)
            scores[(name, "batch KNN")] = Scores(sensors, times, batch_hst)
        else:
            scores[(name, "stream")] = Scores(
                sensors, times, detector_scores(name, sensors, stream_pm)
            )
        progress.done(f"detector {name}")
    if "hst" not in detectors:
        notes.append("HalfSpaceTrees was not among the detectors: no batch-vs-stream agreement.")
    rows = detections(scores, defaults, episodes)
    kinds = sorted({e.fault for e in episodes} - SILENT_FAULTS)
    det_table = detection_table(rows, kinds)

    # --- imputation ------------------------------------------------------------------------
    keep = set(sorted(set(sensors.tolist()))[:imputation_sensors])
    subset = [r for r in load(polls)[0] if r.sensor_index in keep]
    sim = table_from_readings(f"simulator ({len(keep)} sensors, over time)", subset)
    exclude = in_episodes(sim.series, sim.times, episodes)
    imp_rows = evaluate_imputation(
        sim, default_methods(), SIM_SCENARIOS, seed=seed, exclude=exclude
    )
    if snapshot is not None and Path(snapshot).is_file():
        snap = table_from_readings(
            "real snapshot (across sensors)", load(snapshot)[0], key="global"
        )
        imp_rows += evaluate_imputation(snap, default_methods(), SNAPSHOT_SCENARIOS, seed=seed)
    elif snapshot is None:
        notes.append("Real snapshot not requested: its imputation table is skipped.")
    else:
        notes.append(f"Real snapshot not found at {snapshot}: its imputation table is skipped.")
    imp_tables = imputation_tables(imp_rows)
    progress.done("imputation")

    # --- agreement and latency -------------------------------------------------------------
    agree: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if "hst" in detectors:
        kind_of = _kind_of_rows(sensors, times, episodes)
        s_flags = scores[("hst", "stream")].scores > defaults["hst"]
        b_flags = scores[("hst", "batch KNN")].scores > defaults["hst"]
        for i in np.flatnonzero(s_flags | b_flags):
            part = (
                "both"
                if s_flags[i] and b_flags[i]
                else "stream only"
                if s_flags[i]
                else "batch only"
            )
            agree[kind_of[i]][part] += 1
    per_reading = stream_seconds / len(base)
    batch_total = sum(batch.seconds.values())
    delayed = Delayed()
    delayed(table_from_readings("all", base_raw := load(polls)[0]))
    latency = {
        "stream (window mean + HST)": np.full(len(base), per_reading),
        "stream with delayed linear interpolation": np.array(delayed.delays) + per_reading,
        "batch (KNN + HST, after the last reading)": (times.max() - times) + batch_total,
    }
    lat_table = [["path", "median", "95th percentile", "max"]]
    for name, values in latency.items():
        q = np.quantile(values, [0.5, 0.95, 1.0])
        lat_table.append([name] + [_duration(float(v)) for v in q])
    alert_table = _alert_table(scores, defaults, episodes, times.max(), batch_total, per_reading)

    # --- figures ---------------------------------------------------------------------------
    weather = "humidity"
    w_col_imputed = np.array([weather in rec["imputed"] for rec in srec])
    chosen = sensor if sensor is not None else pick_sensor(sensors, w_col_imputed, episodes)
    mine = sensors == chosen
    figures = {
        "series.png": plots.series(
            out / "series.png",
            sensor=chosen,
            times=times[mine],
            pm=np.array([np.nan if v is None else v for v in stream_pm])[mine],
            pm_imputed=np.array([FEATURE in rec["imputed"] for rec in srec])[mine],
            weather_name=weather,
            weather_stream=np.array([_num(rec["values"].get(weather)) for rec in srec])[mine],
            weather_batch=np.array([_num(r.values.get(weather)) for r in base])[mine],
            weather_imputed=w_col_imputed[mine],
            stream_flags=(scores[("hst", "stream")].scores > defaults["hst"])[mine]
            if "hst" in detectors
            else np.zeros(mine.sum(), bool),
            batch_flags=(scores[("hst", "batch KNN")].scores > defaults["hst"])[mine]
            if "hst" in detectors
            else np.zeros(mine.sum(), bool),
            faults=[(e.fault, e.start, e.end) for e in episodes if e.sensor_index == chosen],
        ),
        "scores.png": plots.score_distributions(
            out / "scores.png",
            [
                (
                    f"{d.detector} ({d.path})",
                    _finite(scores[(d.detector, d.path)].scores[~fault_row]),
                    _finite(scores[(d.detector, d.path)].scores[fault_row]),
                    defaults[d.detector],
                    d.threshold,
                )
                for d in rows
                if d.choice == "best F1"
            ],
        ),
    }
    for dataset in dict.fromkeys(r.dataset for r in imp_rows):
        mae: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for r in imp_rows:
            if r.dataset == dataset:
                mae[r.field][r.scenario][r.method] = r.mae
        name = "imputation-" + ("snapshot" if "snapshot" in dataset else "simulator") + ".png"
        figures[name] = plots.imputation_errors(out / name, dataset, mae)
    if agree:
        figures["agreement.png"] = plots.agreement(out / "agreement.png", agree)
    figures["latency.png"] = plots.latency(out / "latency.png", latency)
    del base_raw

    # --- write -----------------------------------------------------------------------------
    build_seconds = time.perf_counter() - clock
    sections = _sections(
        det_table,
        imp_tables,
        agree,
        lat_table,
        alert_table,
        figures,
        notes,
        dict(
            readings=len(base),
            sensors=len(set(sensors.tolist())),
            stream_seconds=stream_seconds,
            batch_seconds=batch.seconds,
            build_seconds=build_seconds,
            sensor=chosen,
        ),
    )
    (out / "report.md").write_text(_render_markdown(sections))
    (out / "index.html").write_text(_render_html(sections, out))
    results = {
        "detection": [
            {
                "detector": d.detector,
                "path": d.path,
                "choice": d.choice,
                "threshold": d.threshold,
                "flags": d.report.flags,
                "precision": d.report.precision,
                "recall": d.report.recall,
                "f1": f1(d.report),
                "per_fault": {
                    k: {
                        "episodes": v.episodes,
                        "detected": v.detected,
                        "median_delay": v.median_delay,
                    }
                    for k, v in d.report.per_fault.items()
                },
            }
            for d in rows
        ],
        "imputation": [asdict(r) for r in imp_rows],
        "agreement": {k: dict(v) for k, v in agree.items()},
        "latency_seconds": {
            k: [float(q) for q in np.quantile(v, [0.5, 0.95, 1.0])] for k, v in latency.items()
        },
        "timing_seconds": {"stream": stream_seconds, **batch.seconds, "build": build_seconds},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=True))
    progress.done("figures")
    return out / "index.html"


def _num(v: float | None) -> float:
    return np.nan if v is None else float(v)


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def _kind_of_rows(sensors: np.ndarray, times: np.ndarray, episodes: Sequence[Episode]) -> list[str]:
    kinds = ["normal"] * len(sensors)
    for kind in {e.fault for e in episodes}:
        inside = in_episodes(sensors, times, [e for e in episodes if e.fault == kind])
        for i in np.flatnonzero(inside):
            kinds[i] = kind
    return kinds


def _alert_table(
    scores, defaults, episodes, last_time, batch_total, per_reading
) -> list[list[str]]:
    """Median time from a fault's start to the first alert, stream vs batch (HST, default)."""
    table = [
        [
            "fault",
            "episodes found (stream / batch)",
            "stream: first alert after",
            "batch: first alert after",
        ]
    ]
    if ("hst", "stream") not in scores:
        return table
    stream = evaluate(scores[("hst", "stream")].flags(defaults["hst"]), episodes)
    batch = evaluate(scores[("hst", "batch KNN")].flags(defaults["hst"]), episodes)
    for kind, fs in stream.per_fault.items():
        if kind in SILENT_FAULTS:
            continue
        fb = batch.per_fault[kind]
        starts = [e.start for e in episodes if e.fault == kind]
        s_delay = "–" if fs.median_delay is None else _duration(fs.median_delay + per_reading)
        b_wait = (
            float(np.median([last_time - s for s in starts])) + batch_total if fb.detected else None
        )
        table.append(
            [
                kind,
                f"{fs.detected} / {fb.detected} of {fs.episodes}",
                s_delay,
                "–" if b_wait is None else _duration(b_wait),
            ]
        )
    return table


def _sections(det_table, imp_tables, agree, lat_table, alert_table, figures, notes, facts):
    """The report as (heading, paragraphs, tables, figure names) sections."""
    bs = facts["batch_seconds"]
    intro = (
        f"{facts['readings']:,} readings of {facts['sensors']} sensors. Stream (Bytewax flow, "
        f"window-mean imputation, per-sensor HalfSpaceTrees): {facts['stream_seconds']:.1f} s. "
        f"Batch (parse {bs['parse']:.1f} s, KNN {bs['impute']:.1f} s, score {bs['score']:.1f} s). "
        f"Report built in {facts['build_seconds']:.0f} s."
    )
    sections = [("Batch versus streaming", [intro, *notes], [], [])]
    sections.append(
        (
            "Detection quality",
            [
                "Precision is over flagged readings, recall over fault episodes (dropouts have "
                "no readings to flag and are left out), F1 their harmonic mean, delay from the "
                "fault's first reading to its first flag. `best F1` is chosen with hindsight on "
                "these labels. `stream` detectors read the flow's window-mean-imputed PM; "
                "`batch KNN` is the batch path (KNN over the whole table, the future included)."
            ],
            [("Detection quality on the simulator's labels", det_table)],
            ["scores.png"],
        )
    )
    paragraphs = [
        "Masking protocol: observed values are hidden (the weather fields together, all PM "
        "channels together, as sensors fail), imputed, and compared with the truth; readings "
        "inside labelled faults are never hidden. MAE / RMSE over the hidden cells each method "
        "filled; `filled` counts them. Streaming methods learn from the past only; "
        "`linear (delayed)` waits for the end of each gap; batch KNN sees the whole table "
        "(future included); `+time` adds the event time as a column (constant on the snapshot)."
    ]
    tables = []
    for (dataset, scenario), table in imp_tables.items():
        tables.append((f"{dataset}, {scenario}", table))
    imp_figs = [f for f in figures if f.startswith("imputation-")]
    sections.append(("Imputation quality", paragraphs, tables, imp_figs))
    sections.append(
        (
            f"A sensor's series (sensor {facts['sensor']})",
            [
                "PM with faults shaded and each path's anomalies (HalfSpaceTrees, threshold 0.7); "
                "humidity with the values each path imputed."
            ],
            [],
            ["series.png"],
        )
    )
    if agree:
        agree_table = [["readings", "both", "stream only", "batch only"]] + [
            [k, *(str(v.get(p, 0)) for p in ("both", "stream only", "batch only"))]
            for k, v in agree.items()
        ]
        sections.append(
            (
                "Batch versus streaming agreement",
                [],
                [("Flagged readings by kind", agree_table)],
                ["agreement.png"],
            )
        )
    sections.append(
        (
            "Latency",
            [
                "The stream answers each reading on arrival (its mean processing cost per "
                "reading is shown); the delayed interpolation holds a reading until its gap "
                "closes; the batch path answers nothing before the last reading has arrived and "
                "the whole table is processed."
            ],
            [
                ("Time from a reading's arrival to its answer", lat_table),
                (
                    "Time from a fault's start to its first alert (HST, default threshold)",
                    alert_table,
                ),
            ],
            ["latency.png"],
        )
    )
    return sections


def _render_markdown(sections) -> str:
    parts = ["# Batch versus streaming: imputation, detection, latency\n"]
    for heading, paragraphs, tables, figs in sections:
        parts.append(f"## {heading}\n")
        parts += [p + "\n" for p in paragraphs]
        parts += [f"**{caption}**\n\n{markdown(t)}\n" for caption, t in tables]
        parts += [f"![{f}]({f})\n" for f in figs]
    return "\n".join(parts)


def _render_html(sections, out: Path) -> str:
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    )
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>Batch vs streaming</title>"
        f"<style>{style}</style><h1>Batch versus streaming</h1>"
    ]
    for heading, paragraphs, tables, figs in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in paragraphs]
        parts += [f"<h3>{html.escape(c)}</h3>{html_table(t)}" for c, t in tables]
        for f in figs:
            data = base64.b64encode((out / f).read_bytes()).decode()
            parts.append(f"<p><img alt='{f}' src='data:image/png;base64,{data}'></p>")
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="directory to write the report into")
    parser.add_argument("--polls", default=str(SHIPPED_DATA))
    parser.add_argument("--labels", default=str(LABELS))
    parser.add_argument("--snapshot", default=str(SNAPSHOT), help="'none' to skip it")
    parser.add_argument("--imputation-sensors", type=int, default=20)
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--sensor", type=int, help="sensor for the series plot")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    index = build_report(
        args.outdir,
        polls=args.polls,
        labels=args.labels,
        snapshot=None if args.snapshot == "none" else args.snapshot,
        imputation_sensors=args.imputation_sensors,
        detectors=[d for d in args.detectors.split(",") if d],
        sensor=args.sensor,
        seed=args.seed,
    )
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
