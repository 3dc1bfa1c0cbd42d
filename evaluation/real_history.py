"""What the quality control says on real PurpleAir history, and on the simulator's QC scenario.

    python -m evaluation.real_history ../shared/data/purpleair-ajl
    python -m evaluation.real_history ../shared/data/purpleair-ajl --config flow.toml \
        --set spatial_window=600 --out /tmp/ajl --seeds 7 8 9

Runs the air-quality flow with the defaults (or `--config`, `--set name=JSON`) on the history
(a folder holding one `*.jsonl.gz` or `*.jsonl` of PurpleAir polls, or that file) with the file
as source, on the column engine (`dataflows.backfill`), and reads what came out beside the raw
values of the file:

- alerts per kind and per reason; incidents per kind, per sensor-month (a calendar month, UTC,
  in which the sensor reported), re-openings (an incident opened less than the clear time after
  the previous one of the same sensor or area and kind closed) and durations;
- channel-rule recall: of the readings whose raw `pm2.5_cf_1_a`/`_b` break the EPA rule
  (`preparation.channels.disagree`), the share alerted with a channel reason;
- the issue's page figure: `sensor_fault` incidents opened for reasons other than the channels,
  in calendar months in which that sensor's raw A/B never break the EPA rule, per sensor-month;
- the local-source episodes, by sensor and local hour of day (America/New_York: the history's
  sensors are in New York's Capital Region), and of sensor 156171's neighbour alerts on winter
  evenings (Nov-Mar, 15:00-20:00 local) the share of each kind;

then, unless `--seeds` is empty, the simulator's QC scenario (200 sensors at real Bay Area
positions and levels from `../shared/data/purpleair_snapshot.json`, 24 h, channel faults,
stuck sensors, two smoke plumes) per seed, scored per kind by `evaluation.kinds`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from evaluation.kinds import epoch
from preparation.channels import disagree
from preparation.reasons import CHANNEL_DISAGREEMENT, CHANNEL_DOWNGRADED, CHANNEL_ZERO

LOCAL = ZoneInfo("America/New_York")
CHANNEL_REASONS = frozenset({CHANNEL_DISAGREEMENT, CHANNEL_ZERO, CHANNEL_DOWNGRADED})
#: The neighbour rule's codes, today's and the earlier `neighbour_disagreement`.
NEIGHBOUR_REASONS = frozenset({"above_neighbours", "below_neighbours", "neighbour_disagreement"})
#: The sensor of the issue's wood-stove evenings, and those evenings.
HOTSPOT = 156171
WINTER = (11, 12, 1, 2, 3)
EVENING = range(15, 20)
ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT.parent / "shared" / "data" / "purpleair_snapshot.json"


def month(t: int) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m")


def local(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=LOCAL)


# --- the raw history ------------------------------------------------------------------------


@dataclass
class Raw:
    """What the file itself says: readings per sensor-month, EPA-rule breaks of the raw A/B."""

    readings: int = 0
    months: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    breaks: set[tuple[int, int]] = field(default_factory=set)  # (sensor, time)
    break_months: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))

    @property
    def sensor_months(self) -> int:
        return sum(len(m) for m in self.months.values())

    def clean_months(self) -> int:
        """Sensor-months in which the sensor's raw A/B never break the EPA rule."""
        return sum(len(m - self.break_months[s]) for s, m in self.months.items())


def read_raw(path: Path) -> Raw:
    """One pass over the polls file."""
    raw = Raw()
    with path.open("rb") as fh:
        for line in fh:
            doc = json.loads(line)
            fields = doc["fields"]
            s, t = fields.index("sensor_index"), fields.index("last_seen")
            a, b = fields.index("pm2.5_cf_1_a"), fields.index("pm2.5_cf_1_b")
            for row in doc["data"]:
                sensor, when = row[s], row[t]
                raw.readings += 1
                m = month(when)
                raw.months[sensor].add(m)
                va, vb = row[a], row[b]
                if va is not None and vb is not None and disagree(va, vb):
                    raw.breaks.add((sensor, when))
                    raw.break_months[sensor].add(m)
    return raw


# --- the flow's outputs --------------------------------------------------------------------


def load_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with path.open() as fh:
        return [json.loads(line) for line in fh if line.strip()]


def history_file(path: Path, work: Path) -> Path:
    """The polls file of a folder or path, decompressed into `work` when gzipped."""
    if path.is_dir():
        found = sorted(path.glob("*.jsonl.gz")) or sorted(path.glob("*.jsonl"))
        if not found:
            raise SystemExit(f"no *.jsonl.gz or *.jsonl in {path}")
        path = found[0]
    if path.suffix != ".gz":
        return path
    out = work / path.name[: -len(".gz")]
    if not out.exists():
        with gzip.open(path, "rb") as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def run_flow(polls: Path, out: Path, config: str | None, options: dict[str, Any]) -> None:
    """The flow over the file on the column engine, its outputs in `out`."""
    from bytewax.testing import run_main

    from dataflows.backfill import backfill_flow

    for name in ("anomalies.jsonl", "incidents.jsonl", "events.jsonl", "dead.jsonl"):
        (out / name).unlink(missing_ok=True)
    flow = backfill_flow(
        polls,
        config=config,
        progress=30.0,
        output=str(out / "anomalies.jsonl"),
        incidents=str(out / "incidents.jsonl"),
        events=str(out / "events.jsonl"),
        dead_letters=str(out / "dead.jsonl"),
        **options,
    )
    run_main(flow)


# --- the tables ----------------------------------------------------------------------------


def incident_key(record: dict[str, Any]) -> tuple[str, str]:
    """Whose incident: the sensor (or area) and kind."""
    who = str(record.get("sensor_index", record.get("area", "")))
    return who, record["kind"]


def incident_spans(incidents: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per incident: its open record, with `closed` (epoch or None)."""
    spans: dict[str, dict[str, Any]] = {}
    for r in incidents:
        if r["state"] == "open":
            spans[r["id"]] = {**r, "opened": epoch(r["started"]), "closed": None}
        elif r["id"] in spans:
            spans[r["id"]]["closed"] = epoch(r["time"])
            spans[r["id"]]["close_reasons"] = r["reasons"]
    return list(spans.values())


def reopenings(spans: Sequence[dict[str, Any]], clear: int) -> Counter:
    """Per kind: incidents opened less than `clear` seconds after the previous one of the same
    sensor (or area) and kind closed."""
    out: Counter = Counter()
    last: dict[tuple[str, str], int | None] = {}
    for span in sorted(spans, key=lambda s: s["opened"]):
        key = incident_key(span)
        closed = last.get(key)
        if closed is not None and span["opened"] - closed < clear:
            out[span["kind"]] += 1
        last[key] = span["closed"]
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def report(
    raw: Raw, alerts: Sequence[dict], incidents: Sequence[dict], clear: int
) -> tuple[str, dict[str, float]]:
    """The tables, and the issue's target figures."""
    lines: list[str] = []
    figures: dict[str, float] = {}
    sensor_months, clean_months = raw.sensor_months, raw.clean_months()
    lines.append(
        f"history: {raw.readings:,} readings, {len(raw.months)} sensors, {sensor_months} "
        f"sensor-months ({clean_months} without a raw EPA-rule break), "
        f"{len(raw.breaks):,} readings whose raw A/B break the EPA rule"
    )
    kinds = Counter(a["kind"] for a in alerts)
    reasons: dict[str, Counter] = defaultdict(Counter)
    for a in alerts:
        reasons[a["kind"]][",".join(r for r in a["reasons"] if r != "score") or "score"] += 1
    lines.append("")
    lines.append(f"alerts: {len(alerts):,}")
    for kind, n in kinds.most_common():
        top = ", ".join(f"{r} {c:,}" for r, c in reasons[kind].most_common(4))
        lines.append(f"  {kind:<18}{n:>8,}   {top}")

    spans = incident_spans(incidents)
    again = reopenings(spans, clear)
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for s in spans:
        by_kind[s["kind"]].append(s)
    lines.append("")
    lines.append(
        f"incidents (clear {clear} s): {len(spans):,}; per sensor-month over all kinds "
        f"{len(spans) / max(sensor_months, 1):.2f}"
    )
    lines.append(
        f"  {'kind':<18}{'opened':>8}{'per s-m':>9}{'re-opened':>11}{'median':>9}{'p90':>9}"
        f"{'open':>6}"
    )
    for kind, group in sorted(by_kind.items()):
        durations = [s["closed"] - s["opened"] for s in group if s["closed"] is not None]
        lines.append(
            f"  {kind:<18}{len(group):>8,}{len(group) / max(sensor_months, 1):>9.2f}"
            f"{again[kind]:>11,}{hours(statistics.median(durations) if durations else 0):>9}"
            f"{hours(percentile(durations, 0.9)):>9}{len(group) - len(durations):>6}"
        )

    faults_by_day = Counter(
        datetime.fromtimestamp(s["opened"], tz=UTC).date().isoformat()
        for s in by_kind.get("sensor_fault", [])
    )
    if faults_by_day:
        busiest, n = max(faults_by_day.items(), key=lambda kv: (kv[1], kv[0]))
        lines.append(
            f"  busiest day: {n} sensor_fault incidents opened on {busiest} (UTC); "
            f"2023-12-02: {faults_by_day.get('2023-12-02', 0)}"
        )

    # channel-rule recall against the raw A/B values
    channel_alerts = {
        (a["sensor_index"], epoch(a["time"]))
        for a in alerts
        if CHANNEL_REASONS.intersection(a["reasons"])
    }
    found = len(raw.breaks & channel_alerts)
    recall = found / len(raw.breaks) if raw.breaks else 0.0
    figures["channel_recall"] = recall
    lines.append("")
    lines.append(
        f"TARGET channel-rule recall: {found:,} of {len(raw.breaks):,} raw EPA-rule breaks alerted "
        f"with a channel reason ({recall:.3f}); channel alerts on other readings: "
        f"{len(channel_alerts - raw.breaks):,}"
    )

    # the page figure
    pages = [
        s
        for s in by_kind.get("sensor_fault", [])
        if not set(s["reasons"]) <= CHANNEL_REASONS
        and month(s["opened"]) not in raw.break_months[s.get("sensor_index")]
    ]
    figures["pages"] = len(pages) / max(clean_months, 1)
    page_reasons = Counter(",".join(s["reasons"]) for s in pages)
    lines.append(
        f"TARGET pages: sensor_fault incidents not opened by the channels, in the {clean_months} "
        f"sensor-months without a raw EPA-rule break: {len(pages):,} = "
        f"{figures['pages']:.2f} per such sensor-month (target <= 1); reasons: "
        + (", ".join(f"{r} {c}" for r, c in page_reasons.most_common(4)) or "-")
    )

    # local sources
    local_alerts = [a for a in alerts if a["kind"] == "local_source"]
    episodes = by_kind.get("local_source", [])
    lines.append("")
    lines.append(
        f"local-source episodes: {len(episodes):,}; alerts {len(local_alerts):,}; by sensor, "
        f"alerts by local hour of day (00..23):"
    )
    per_sensor: dict[int, list[int]] = defaultdict(lambda: [0] * 24)
    for a in local_alerts:
        per_sensor[a["sensor_index"]][local(epoch(a["time"])).hour] += 1
    eps = Counter(s.get("sensor_index") for s in episodes)
    excess = defaultdict(list)
    for a in local_alerts:
        ratio = (a.get("neighbours") or {}).get("ratio")
        if ratio is not None:
            excess[a["sensor_index"]].append(ratio)
    for sensor in sorted(per_sensor, key=lambda s: -sum(per_sensor[s])):
        row = per_sensor[sensor]
        ratio = f"x{statistics.median(excess[sensor]):.1f}" if excess[sensor] else ""
        lines.append(
            f"  {sensor:>7} episodes {eps[sensor]:>4} alerts {sum(row):>5} {ratio:>6} | "
            + " ".join(f"{n:>3}" if n else "  ." for n in row)
        )

    # the hotspot's winter evenings
    evening = []
    for a in alerts:
        if a["sensor_index"] != HOTSPOT or not NEIGHBOUR_REASONS.intersection(a["reasons"]):
            continue
        when = local(epoch(a["time"]))
        if when.month in WINTER and when.hour in EVENING:
            evening.append(a["kind"])
    split = Counter(evening)
    share = split["local_source"] / len(evening) if evening else 0.0
    figures["hotspot_local_share"] = share
    figures["hotspot_sensor_fault"] = split["sensor_fault"]
    lines.append("")
    lines.append(
        f"{HOTSPOT}'s neighbour alerts on winter evenings (Nov-Mar, 15:00-20:00 local): "
        f"{len(evening):,}; "
        + ", ".join(f"{k} {n:,}" for k, n in split.most_common())
        + f"; TARGET local_source share {share:.3f} (>= 0.8), sensor_fault none"
    )
    return "\n".join(lines), figures


# --- the simulator ------------------------------------------------------------------------


def simulator_table(
    seed: int,
    work: Path,
    config: str | None,
    options: dict[str, Any],
    snapshot: Path = SNAPSHOT,
    sensors: int = 200,
) -> str:
    """The QC scenario of `seed` through the flow (the defaults, its own file as source), scored
    per kind (`evaluation.kinds`)."""
    from bytewax.testing import TestingSink, run_main

    from data import qc, simulate
    from dataflows.air_quality import build_flow
    from evaluation.detection import load_labels
    from evaluation.kinds import evaluate, format_report, load_alerts, load_readings

    out = work / f"sim-{seed}"
    out.mkdir(exist_ok=True)
    layout = qc.real_layout(snapshot, sensors, seed, simulate.LAT_RANGE, simulate.LON_RANGE)
    sim = simulate.generate(seed=seed, n_sensors=sensors, channels=True, smoke=2, layout=layout)
    polls, labels = simulate.write(sim, out)
    alerts, incidents = out / "alerts.jsonl", []
    alerts.unlink(missing_ok=True)
    flow = build_flow(
        str(polls),
        config=config,
        progress=None,
        output=str(alerts),
        incidents=TestingSink(incidents),
        events=TestingSink([]),
        **options,
    )
    run_main(flow)
    found = evaluate(load_alerts(alerts), load_labels(labels), load_readings(polls), incidents)
    wrong = Counter(",".join(r for r in a.reasons if r != "score") for a in found.wrong_faults)
    text = format_report(found)
    if wrong:
        text += "\nsensor_fault alerts outside a fault label, by reasons: " + ", ".join(
            f"{r} {n}" for r, n in wrong.most_common(5)
        )
    return text


# --- command line --------------------------------------------------------------------------


def parse_sets(pairs: Iterable[str]) -> dict[str, Any]:
    """`name=JSON` (a bare word is a string) as `build_flow` keywords."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        try:
            out[name] = json.loads(text)
        except json.JSONDecodeError:
            out[name] = text
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.real_history", description=__doc__.splitlines()[0]
    )
    parser.add_argument("history", type=Path, help="folder (or file) of the PurpleAir history")
    parser.add_argument("--config", help="a flow.toml; unset: the defaults")
    parser.add_argument("--set", nargs="*", default=[], help="build_flow keywords, name=JSON")
    parser.add_argument("--out", type=Path, help="where the flow's outputs go (kept)")
    parser.add_argument(
        "--reuse", action="store_true", help="read the outputs already in --out, do not run"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[7], help="simulator seeds (none: skip)"
    )
    parser.add_argument(
        "--snapshot", type=Path, default=SNAPSHOT, help="the PurpleAir payload of real positions"
    )
    parser.add_argument(
        "--skip-history", action="store_true", help="only the simulator's scenarios"
    )
    args = parser.parse_args(argv)
    options = parse_sets(args.set)
    work = args.out or Path(tempfile.mkdtemp(prefix="real_history-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_history:
        polls = history_file(args.history, work)
        if not args.reuse:
            run_flow(polls, work, args.config, options)
        from config import resolve

        clear = resolve(args.config, **options).outputs.incident_clear
        raw = read_raw(polls)
        text, _figures = report(
            raw, load_lines(work / "anomalies.jsonl"), load_lines(work / "incidents.jsonl"), clear
        )
        print(f"== {polls.name}: the flow's outputs in {work}", flush=True)
        print(text, flush=True)
    for seed in args.seeds:
        print(f"\n== simulator QC scenario, seed {seed} (200 sensors, 24 h, two plumes)")
        print(simulator_table(seed, work, args.config, options, args.snapshot), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
