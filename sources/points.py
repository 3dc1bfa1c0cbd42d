"""PurpleAir API points: what a request costs, counted before it is sent and after it answers.

PurpleAir bills every request `base + rows × (sum of the requested fields' points)` ("API
Pricing", community.purpleair.com/t/api-pricing/4523). The exact table is on the logged-in
pricing page (develop.purpleair.com/pricing); what is published about it, and used here:

- base cost per request: `get_sensor` 1, `get_sensors` 5 (the pricing page as quoted in
  home-assistant/core#93428), never more than 5 for any endpoint (API Pricing). The history
  and group endpoints' base costs are not published: 5, the ceiling, is assumed;
- per row, every field costs 1 or 2 points (home-assistant/core#93428); a field averaged over
  the A and B channels (`pm2.5_atm`, `temperature`, ...) costs 2 and a single channel's
  (`pm2.5_atm_a`) 1 ("How to Make Efficient API Calls", community.purpleair.com/t/6906);
  any other field is taken as 1;
- `sensor_index` (and the history's `time_stamp`) come with every row unasked: 0.

Every figure lives in this module's tables, so a change of PurpleAir's prices is one edit.

    python -m sources.points live --sensors 1000 --interval 120
    python -m sources.points history --sensors 11 --start 2022-07-01 --end 2024-06-12 --average 10

>>> field_cost("pm2.5_atm"), field_cost("pm2.5_atm_a"), field_cost("last_seen")
(2, 1, 1)
>>> request_cost("history", ["pm2.5_atm_a", "pm2.5_atm_b", "humidity"], rows=144)
581
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from core.logs import ensure_stderr_handler
from sources.counters import POINTS

#: Points per request, by endpoint (see the module's docstring for the sources).
BASE_COST = {"sensor": 1, "sensors": 5, "history": 5, "members": 5}
#: Fields that have an A and a B channel (`<name>_a`, `<name>_b`): their average costs 2.
CHANNEL_PAIRS = frozenset(
    {
        "humidity",
        "temperature",
        "pressure",
        "voc",
        "pm1.0",
        "pm1.0_atm",
        "pm1.0_cf_1",
        "pm2.5",
        "pm2.5_alt",
        "pm2.5_atm",
        "pm2.5_cf_1",
        "pm2.5_10minute",
        "pm2.5_30minute",
        "pm2.5_60minute",
        "pm2.5_6hour",
        "pm2.5_24hour",
        "pm2.5_1week",
        "pm10.0",
        "pm10.0_atm",
        "pm10.0_cf_1",
        "0.3_um_count",
        "0.5_um_count",
        "1.0_um_count",
        "2.5_um_count",
        "5.0_um_count",
        "10.0_um_count",
        "scattering_coefficient",
        "deciviews",
        "visual_range",
    }
)
#: Fields every row carries without being asked.
FREE_FIELDS = frozenset({"sensor_index", "time_stamp"})
#: Rows per second of history at each `average` (minutes; 0 = real time, about every 2 minutes).
REAL_TIME_STEP = 120

log = logging.getLogger("air_quality.points")


def field_cost(name: str) -> int:
    """Points one row of this field costs."""
    if name in FREE_FIELDS:
        return 0
    return 2 if name in CHANNEL_PAIRS else 1


def row_cost(fields: Iterable[str]) -> int:
    """Points one row of these fields costs."""
    return sum(field_cost(f) for f in dict.fromkeys(fields))


def request_cost(endpoint: str, fields: Iterable[str], rows: int) -> int:
    """Points one request costs: its endpoint's base and `rows` rows of `fields`."""
    return BASE_COST[endpoint] + rows * row_cost(fields)


def history_rows(start: int, end: int, average: int) -> int:
    """The most rows a sensor's history from `start` to `end` (epoch s, end excluded) holds."""
    step = REAL_TIME_STEP if average == 0 else average * 60
    return max(0, -(-(end - start) // step))


class BudgetExceeded(Exception):
    """The next request would pass the run's points budget (or the hour's, when told to stop)."""


@dataclass
class Budget:
    """Points allowed: `per_run` (stop before passing it), `per_hour` (over the last hour; at it
    `on_limit="slow"` waits, `"stop"` stops). None: no limit."""

    per_run: int | None = None
    per_hour: int | None = None
    on_limit: str = "slow"

    def __post_init__(self) -> None:
        if self.on_limit not in ("slow", "stop"):
            raise ValueError(f"budget on_limit is 'slow' or 'stop', not {self.on_limit!r}")
        for name in ("per_run", "per_hour"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"budget {name} must be at least 1 point")


class PointsLedger:
    """The points one process spends: checked against a `Budget` before each request, counted
    after it (Prometheus `purpleair_points`, `sources.counters.POINTS`), logged once an hour and
    at the end.

    Shared by the partitions of one process (under a lock). `clock` is seconds (tests).
    """

    def __init__(
        self,
        budget: Budget | None = None,
        *,
        clock: Callable[[], float] = time.time,
        write: Callable[[str], object] | None = None,
    ):
        self.budget = budget or Budget()
        self._clock = clock
        self._write = write or _log_info
        self._lock = threading.Lock()
        self.spent = 0
        self.requests = 0
        self._recent: list[tuple[float, int]] = []  # (when, points) of the last hour
        self._hour_start = clock()
        self._hour_points = 0

    def wait_for(self, estimate: int) -> float:
        """Seconds to wait before a request estimated at `estimate` points (0: send it now);
        raises `BudgetExceeded` with the line to show when the budget says stop."""
        budget, now = self.budget, self._clock()
        with self._lock:
            if budget.per_run is not None and self.spent + estimate > budget.per_run:
                raise BudgetExceeded(
                    f"points budget: the next request (~{estimate:,} points) would pass the "
                    f"run's {budget.per_run:,} ({self.spent:,} spent in {self.requests:,} "
                    "requests); stopped — run again with a larger budget to go on"
                )
            if budget.per_hour is None:
                return 0.0
            self._recent = [(t, p) for t, p in self._recent if t > now - 3600]
            hour = sum(p for _t, p in self._recent)
            if hour + estimate <= budget.per_hour or not self._recent:
                return 0.0
            if budget.on_limit == "stop":
                raise BudgetExceeded(
                    f"points budget: {hour:,} points spent in the last hour, the next request "
                    f"(~{estimate:,}) would pass {budget.per_hour:,} an hour; stopped"
                )
            freed, wait = hour, 0.0
            for t, p in self._recent:  # wait until enough of the hour's spending has aged out
                freed -= p
                wait = t + 3600 - now
                if freed + estimate <= budget.per_hour:
                    break
            return max(wait, 0.0)

    def spend(self, endpoint: str, points: int) -> None:
        """Count a request's points (the counter, the hour's and the run's totals)."""
        POINTS.labels(endpoint).inc(points)
        now = self._clock()
        line = None
        with self._lock:
            self.spent += points
            self.requests += 1
            self._recent.append((now, points))
            if now - self._hour_start >= 3600:
                line = f"points: {self._hour_points:,} in the last hour, {self.spent:,} this run"
                self._hour_start, self._hour_points = now, 0
            self._hour_points += points
        if line is not None:
            self._write(line)

    def summary(self) -> str:
        """`points: N spent in R requests this run`."""
        with self._lock:
            return f"points: {self.spent:,} spent in {self.requests:,} requests this run"


def _log_info(line: str) -> None:
    ensure_stderr_handler(log)
    log.info(line)


def live_day_cost(sensors: int, fields: Sequence[str], interval: float) -> tuple[int, int]:
    """(polls, points) of a day of live polling of `sensors` sensors every `interval` s, each
    poll answering every sensor (PurpleAir updates every 2 minutes, so with `modified_since` a
    poll at 120 s or more still returns nearly all of them)."""
    polls = int(86400 // interval)
    return polls, polls * request_cost("sensors", fields, sensors)


def main(argv: Sequence[str] | None = None) -> int:
    from sources.poller import DEFAULT_FIELDS

    parser = argparse.ArgumentParser(
        prog="python -m sources.points", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="what", required=True)
    live = sub.add_parser("live", help="a day of live polling")
    live.add_argument("--sensors", type=int, required=True)
    live.add_argument("--interval", type=float, default=120.0)
    live.add_argument("--fields", default=",".join(DEFAULT_FIELDS))
    hist = sub.add_parser(
        "history",
        help="a history back-fill (python -m dataflows.backfill "
        "--from-api --dry-run gives the same for named sensors)",
    )
    hist.add_argument("--sensors", type=int, required=True, help="how many sensors")
    hist.add_argument("--start", required=True)
    hist.add_argument("--end", required=True)
    hist.add_argument("--average", type=int, default=10)
    hist.add_argument("--fields", default=None)
    args = parser.parse_args(argv)
    if args.what == "live":
        fields = [f for f in args.fields.split(",") if f]
        polls, points = live_day_cost(args.sensors, fields, args.interval)
        print(
            f"live polling: {args.sensors:,} sensors every {args.interval:g} s, "
            f"{len(fields)} fields at {row_cost(fields)} points a row: {polls:,} polls, "
            f"{points:,} points a day"
        )
        return 0
    from sources.history import DEFAULT_HISTORY_FIELDS, HistoryPlan, parse_time

    fields = args.fields.split(",") if args.fields else list(DEFAULT_HISTORY_FIELDS)
    plan = HistoryPlan(
        list(range(args.sensors)),
        parse_time(args.start),
        parse_time(args.end),
        args.average,
        fields,
    )
    print(plan.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
