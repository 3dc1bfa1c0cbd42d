"""What one poll of a hostile server costs: seconds and peak RSS, for `docs/edges.md`.

    python -m benchmarks.http_limits [--bomb-mib 256] [--trickle 30]

Runs one `PurpleAirPoller` poll, with its default limits except a 1 s deadline for the trickle,
against `tests/hostile_http.py` on 127.0.0.1: a gzip bomb of `--bomb-mib` MiB of zeros, then a
body of `--trickle` bytes sent 5 a second. Each case runs in a child process of its own, so its
peak RSS (`ru_maxrss`) is its own. On a tree whose poller has no `limits` (main before issue
20), copy this file and `tests/hostile_http.py` there: it runs without them, for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASE = r"""
import inspect, json, logging, os, resource, sys, time
from sources.poller import PurpleAirPoller
from tests.hostile_http import Hostile, MiB, answer, gzip_bomb, head, trickle

logging.disable(logging.CRITICAL)
os.environ["PURPLEAIR_API_KEY"] = "k"
kind, size = sys.argv[1], int(sys.argv[2])
if kind == "bomb":
    data = gzip_bomb(size * MiB)
    limits, sent = {}, len(data)
    def route(q, b):
        return answer(200, data, {"Content-Encoding": "gzip"})
else:
    def route(q, b):
        yield head(200, {"Content-Length": str(size)}), 0.0
        yield from trickle(b" " * size, 0.2)
    limits, sent = {"deadline_s": 1.0}, size
if "limits" not in inspect.signature(PurpleAirPoller).parameters:
    limits = None  # a tree without limits (main before issue 20), for comparison
options = {"limits": limits} if limits is not None else {}
with Hostile({"/v1/sensors": route}) as server:
    part = PurpleAirPoller(
        server.url + "/v1", timeout=(1.0, 0.5), seed=1, **options
    ).build_part("read", "purpleair-api", None)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    batch = part.next_batch()
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
reasons = [getattr(item, "reason", "reading") for item in batch][:1] or ["retried"]
print(json.dumps({"case": kind, "sent": sent, "seconds": round(seconds, 2),
                  "rss_added_mib": round((after - before) / 1024), "outcome": reasons[0]}))
"""


def run_case(kind: str, size: int) -> dict:
    """One case in a child process at the repository root: its JSON line."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", CASE, kind, str(size)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb-mib", type=int, default=256, help="MiB the bomb unpacks to")
    parser.add_argument("--trickle", type=int, default=30, help="bytes sent 5 a second")
    args = parser.parse_args()
    for kind, size in (("bomb", args.bomb_mib), ("trickle", args.trickle)):
        print(json.dumps(run_case(kind, size)))


if __name__ == "__main__":
    main()
