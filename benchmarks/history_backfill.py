"""Acceptance of the history back-fill: the real history of 11 sensors over 2 years at average=10
served by the fake PurpleAir (`tests/fake_history.py`) gives the flow's outputs of the same
history read as a file, and a back-fill killed with SIGKILL part-way and resumed holds exactly
the uninterrupted run's rows in SQLite.

    python -m benchmarks.history_backfill                 # ../shared/data/purpleair-ajl
    python -m benchmarks.history_backfill --days 60       # the first 60 days only
    python -m benchmarks.history_backfill --no-resume     # the comparison only

Prints the rows, the points the fake charged and the source counted, the back-fill's dry-run
estimate, each run's time, and whether every output is equal.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytewax.testing import run_main

from dataflows.air_quality import build_flow
from dataflows.backfill import history_flow
from sources.history import HistoryPlan
from tests.databases import OUTPUTS, expected, fetch, matches
from tests.fake_history import API_KEY, DAY, FakeHistory, history_from_polls
from tests.test_recovery import commit_epoch

ROOT = Path(__file__).resolve().parent.parent
AJL = ROOT.parent / "shared" / "data" / "purpleair-ajl" / "ajl-dev.jsonl.gz"
START, END = 1_656_633_600, 1_718_236_800  # 2022-07-01, 2024-06-13 (UTC)
FIELDS = [
    "humidity",
    "temperature",
    "pressure",
    "pm2.5_cf_1",
    "pm2.5_cf_1_a",
    "pm2.5_cf_1_b",
    "pm2.5_atm",
    "pm2.5_atm_a",
    "pm2.5_atm_b",
]
BACKOFF = {"base": 0.05, "cap": 0.5}


def outputs_to(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return {o: str(folder / f"{o}.jsonl") for o in OUTPUTS}


def records(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for option in OUTPUTS:
        path = folder / f"{option}.jsonl"
        out[option] = (
            [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
        )
    return out


def canonical(found: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {o: sorted(json.dumps(r, sort_keys=True) for r in v) for o, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, help="only the first this many days")
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args()
    end = END if args.days is None else START + args.days * DAY
    os.environ["PURPLEAIR_API_KEY"] = API_KEY
    work = Path(tempfile.mkdtemp(prefix="history-acceptance-"))
    with gzip.open(AJL, "rb") as fh:
        lines = [x for x in fh if START <= json.loads(x)["data_time_stamp"] < end]
    polls = work / "polls.jsonl"
    polls.write_bytes(b"".join(lines))
    rows, positions = history_from_polls(lines)
    sensors = sorted(rows)
    plan = HistoryPlan(sensors, START, end, 10, FIELDS)
    print(f"{len(lines):,} polls, {sum(map(len, rows.values())):,} rows of {len(sensors)} sensors")
    print("dry run:", plan.describe())

    began = time.monotonic()
    run_main(build_flow(str(polls), progress=None, **outputs_to(work / "file")))
    print(f"file run: {time.monotonic() - began:.0f} s")
    want = records(work / "file")

    with FakeHistory(rows, positions) as fake:
        options = {"base_url": fake.base_url, "fields": FIELDS, "backoff": BACKOFF, "progress": 30}
        began = time.monotonic()
        flow = history_flow(
            sensors, start=START, end=end, source_options=options, **outputs_to(work / "api")
        )
        run_main(flow)
        print(f"API run: {time.monotonic() - began:.0f} s, {fake.history_requests} requests")
        print(f"points: the fake charged {fake.charged:,}")
    got = records(work / "api")
    equal = canonical(got) == canonical(want)
    sizes = {o: len(v) for o, v in want.items()}
    print(f"outputs {sizes}: {'equal' if equal else 'DIFFERENT'} to the file run's")
    for option in OUTPUTS:
        if canonical(got)[option] != canonical(want)[option]:
            a, b = set(canonical(want)[option]), set(canonical(got)[option])
            print(f"  {option}: {len(a - b)} only in the file run, {len(b - a)} only via the API")
    if args.no_resume:
        return 0 if equal else 1
    return 0 if equal and resumed(work, rows, positions, sensors, end, want) else 1


def resumed(work, rows, positions, sensors, end, want) -> bool:
    """Killed with SIGKILL while the fake holds part-way, resumed: the database equals `want`."""
    url = f"sqlite:///{work / 'flow.db'}"
    db = work / "recovery"
    db.mkdir()
    subprocess.run([sys.executable, "-m", "bytewax.recovery", str(db), "1"], check=True, cwd=ROOT)
    log = work / "run.log"
    hold = len(sensors) * (len(HistoryPlan(sensors, START, end, 10, FIELDS).windows) // 2) + 3
    with FakeHistory(rows, positions, hold_after=hold) as fake:
        options = {"base_url": fake.base_url, "fields": FIELDS, "backoff": BACKOFF, "progress": 30}
        outs = "".join(f", {o}={url!r}" for o in OUTPUTS)
        target = (
            f"dataflows.backfill:history_flow({sensors!r}, start={START}, end={end}, "
            f"source_options={options!r}{outs})"
        )
        command = [sys.executable, "-m", "bytewax.run", target, "-r", str(db), "-s", "2", "-b", "0"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def start() -> subprocess.Popen:
            with log.open("a") as out:
                return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)

        began = time.monotonic()
        proc = start()
        first = None
        while time.monotonic() - began < 3600:
            if proc.poll() is not None:
                print("the run ended before it was held:", log.read_text()[-2000:])
                return False
            if fake.answered >= hold and first is None:
                first = commit_epoch(db)
            if first is not None and commit_epoch(db) > first + 1:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        before = len(fetch(url, "readings"))
        charged = fake.charged
        fake.release()
        proc = start()
        code = proc.wait()
        print(
            f"killed after {hold} chunks with {before:,} readings "
            f"rows ({charged:,} points); resumed: exit {code}, {time.monotonic() - began:.0f} s "
            f"in all, {fake.charged:,} points in all"
        )
    same = True
    for option, table in OUTPUTS.items():
        ok = matches(fetch(url, table), expected(table, want[option]))
        print(f"  {table}: {len(fetch(url, table)):,} rows, {'equal' if ok else 'DIFFERENT'}")
        same = same and ok
    return code == 0 and same


if __name__ == "__main__":
    sys.exit(main())
