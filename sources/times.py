"""Times of the air-quality flow: the one formatter, and the plausible window a reading's time
must fall in to be read.

Every time the flow writes goes through `iso_time` (four-digit years, always: `0099-06-01...`,
which PostgreSQL and SQLite both read as the year 99, not 1999 or NULL).

A reading's time is checked once, where it is read (`sources.payload`, `columns.parse`,
`columns.csv_source`): outside the window it is a dead letter, so it never reaches a sensor's
state. The window is `[earliest, latest]`: by default from 2000-01-01T00:00:00Z (no PurpleAir
sensor is older) to the wall clock plus `skew` seconds (a sensor's clock may run a little
ahead; ten minutes is five reporting intervals). The any-series flow (`dataflows.series`)
keeps any time.

>>> iso_time(-59042995200), iso_time(1775001600)
('0099-01-01T00:00:00Z', '2026-04-01T00:00:00Z')
>>> window = TimeWindow(parse_time("2000-01-01T00:00:00Z"), parse_time("2030-01-01"))
>>> window.bounds()
(946684800, 1893456000)
>>> print(window.refusal("last_seen", 4102444800, window.bounds()))
last_seen 4102444800 (2100-01-01T00:00:00Z) is after the latest plausible time 2030-01-01T00:00:00Z
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Epoch seconds that are a date at all (years 1 to 9999, UTC), so every output time prints.
EPOCH_RANGE = (-62135596800, 253402300799)
#: The earliest plausible time of a reading, unless configured (a test fixture may move it).
EARLIEST = "2000-01-01T00:00:00Z"
#: Seconds a reading may be ahead of the wall clock, unless configured.
SKEW = 600
_EPOCH = datetime(1970, 1, 1)


def iso_time(epoch_seconds: int) -> str:
    """ISO 8601 UTC, second precision, four-digit year: `2026-04-01T00:02:00Z`."""
    return (_EPOCH + timedelta(seconds=int(epoch_seconds))).isoformat() + "Z"


def parse_time(text: str) -> int:
    """Epoch seconds of an ISO 8601 date or date-time (UTC when it gives no offset); ValueError
    when it is not one, or not in whole seconds.

    >>> parse_time("2000-01-01T00:00:00Z"), parse_time("2000-01-01T01:00:00+01:00")
    (946684800, 946684800)
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.microsecond:
        raise ValueError(f"{text!r} is not a whole second")
    return epoch_of(moment)


@functools.lru_cache(maxsize=16)
def _parsed(text: str) -> int:
    """`parse_time(text)`, once per text (the default earliest time, read for every payload)."""
    return parse_time(text)


def epoch_of(moment: datetime) -> int:
    """Whole epoch seconds of a datetime (UTC when it has no offset), any year 1 to 9999."""
    since = moment.replace(tzinfo=None) - _EPOCH - (moment.utcoffset() or timedelta())
    return since.days * 86400 + since.seconds


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The plausible times of a reading, epoch seconds: `earliest` (None: `EARLIEST`) to
    `latest` (None: the wall clock, read when a payload or batch is checked, plus `skew`)."""

    earliest: int | None = None
    latest: int | None = None
    skew: int = SKEW

    def bounds(self) -> tuple[int, int]:
        """`(earliest, latest)` now, both within `EPOCH_RANGE`."""
        low = _parsed(EARLIEST) if self.earliest is None else self.earliest
        high = int(time.time()) + self.skew if self.latest is None else self.latest
        return max(low, EPOCH_RANGE[0]), min(high, EPOCH_RANGE[1])

    def refusal(self, what: str, value: int, bounds: tuple[int, int]) -> str:
        """The dead letter's reason for a time `value` outside `bounds` (from `bounds()`)."""
        low, high = bounds
        shown = f"{what} {value} ({iso_time(value)})"
        if value < low:
            return f"{shown} is before the earliest plausible time {iso_time(low)}"
        clock = f" (the clock plus {self.skew} s)" if self.latest is None else ""
        return f"{shown} is after the latest plausible time {iso_time(high)}{clock}"
