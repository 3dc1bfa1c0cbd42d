"""The run's health, per minute of the system clock: readings taken in, dead letters, gap and
offline events, and the newest reading's time, upserted into the `health` table of the flow's
database for the live view (`viewer/`).

Each batch leaving the per-shard step (and each batch of dead letters) becomes one tally under the
minute it was processed in and the run (process) that processed it; a keyed step sums a minute's
tallies (minute and run are the key, so one worker holds them) and writes its running total,
which replaces the row. Rows of several processes, or of a run started again, sit side by side
and the view adds them up. A minute's state is let go `KEEP` after its last tally, so memory
stays bounded in a run of any length.

Minutes are processing time, not event time: a replayed file lands in the minutes it took to
replay, and a run resumed after a crash counts its replayed batches again in the minutes they
are replayed in (the readings themselves are still written once). Like the Prometheus counters,
these rows describe the run, not the data.

>>> m = "2026-04-01T00:02:00Z"
>>> out, _ = HealthLogic().on_batch([Tally(m, "r", readings=3, newest=120), Tally(m, "r", 1)])
>>> {k: out[-1][k] for k in ("minute", "readings", "dead_letters", "gaps", "offline", "newest")}
... # doctest: +NORMALIZE_WHITESPACE
{'minute': '2026-04-01T00:02:00Z', 'readings': 4, 'dead_letters': 0, 'gaps': 0, 'offline': 0,
 'newest': '1970-01-01T00:02:00Z'}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import Sink

from columns.logic import BatchTally
from preparation.gaps import GapEvent
from sinks.database import database_url

#: How long a minute's state is kept after its last tally (wall clock).
KEEP = timedelta(minutes=10)
#: The outputs whose database (the first one that is a database) gets the `health` table.
HEALTH_OUTPUTS = ("readings", "anomalies", "events", "dead_letters")


@dataclass(slots=True)
class Tally:
    """What one batch added in one minute (and a minute's running totals)."""

    minute: str  # ISO UTC minute of the system clock
    run: str  # the process's run: when it started, and its process id
    readings: int = 0
    dead_letters: int = 0
    gaps: int = 0
    offline: int = 0
    newest: int | None = None  # epoch seconds of the newest reading


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minute_of(epoch: float) -> str:
    """The UTC minute holding `epoch`, as ISO text: `minute_of(125.0)` → `1970-01-01T00:02:00Z`."""
    return _iso(epoch - epoch % 60)


def run_id() -> str:
    """This process's run: its start (the flow built) and process id."""
    return f"{_iso(time.time())}/{os.getpid()}"


def tally_per_key(
    batch: list[tuple[str, Any]], run: str, clock: Callable[[], float] = time.time
) -> list:
    """One `(key, Tally)` of a batch of the per-shard step's output (its batch tallies count
    the readings, as most never become objects; gap events), or none when it holds nothing to
    count."""
    tally = Tally(minute_of(clock()), run)
    for _key, value in batch:
        kind = type(value)
        if kind is BatchTally:
            tally.readings += value.received
            if value.newest is not None and (tally.newest is None or value.newest > tally.newest):
                tally.newest = value.newest
        elif kind is GapEvent:
            if value.kind == "gap":
                tally.gaps += 1
            else:
                tally.offline += 1
    if tally.readings or tally.gaps or tally.offline:
        return [(f"{tally.minute} {run}", tally)]
    return []


def tally_dead_letters(batch: list[Any], run: str, clock: Callable[[], float] = time.time) -> list:
    """One `(key, Tally)` of a batch of dead letters."""
    if not batch:
        return []
    minute = minute_of(clock())
    return [(f"{minute} {run}", Tally(minute, run, dead_letters=len(batch)))]


class HealthLogic(StatefulBatchLogic):
    """One minute's running totals; writes them after each batch, lets go `KEEP` after."""

    def __init__(self, resume: tuple | None = None):
        self.totals = None if resume is None else Tally(*resume)
        self.expires = datetime.now(UTC) + KEEP

    def on_batch(self, values: list[Tally]) -> tuple[list[dict[str, Any]], bool]:
        if self.totals is None:
            self.totals = Tally(values[0].minute, values[0].run)
        t = self.totals
        for v in values:
            t.readings += v.readings
            t.dead_letters += v.dead_letters
            t.gaps += v.gaps
            t.offline += v.offline
            if v.newest is not None and (t.newest is None or v.newest > t.newest):
                t.newest = v.newest
        self.expires = datetime.now(UTC) + KEEP
        record = {
            "minute": t.minute,
            "run": t.run,
            "readings": t.readings,
            "dead_letters": t.dead_letters,
            "gaps": t.gaps,
            "offline": t.offline,
            "newest": None if t.newest is None else _iso(t.newest),
            "updated": _iso(time.time()),
        }
        return [record], StatefulBatchLogic.RETAIN

    def notify_at(self) -> datetime | None:
        return self.expires

    def on_notify(self) -> tuple[list[Any], bool]:
        return [], StatefulBatchLogic.DISCARD

    def snapshot(self) -> tuple:
        t = self.totals
        return (t.minute, t.run, t.readings, t.dead_letters, t.gaps, t.offline, t.newest)


def health_url(outputs: Any) -> str | None:
    """The database the health rows go to: that of the first of `HEALTH_OUTPUTS` that is one."""
    for name in HEALTH_OUTPUTS:
        url = database_url(getattr(outputs, name))
        if url is not None:
            return url
    return None


def write_health(
    per_key: Stream[tuple[str, Any]],
    rejected: Stream[Any],
    sink: Sink[Mapping[str, Any]],
) -> None:
    """The per-minute health rows of the per-shard step's output and the dead letters, to
    `sink`."""
    run = run_id()
    tallies = op.merge(
        "health_tallies",
        op.flat_map_batch("health_per_key", per_key, lambda b: tally_per_key(b, run)),
        op.flat_map_batch("health_dead_letters", rejected, lambda b: tally_dead_letters(b, run)),
    )
    rows = op.stateful_batch("health_minutes", tallies, HealthLogic)
    op.output("health_out", op.key_rm("health_rows", rows), sink)
