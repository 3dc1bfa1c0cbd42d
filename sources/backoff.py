"""Exponential backoff with jitter, and the `Retry-After` header, for retrying HTTP calls.

The n-th consecutive failure waits a random time in `[d/2, d]` where `d = min(cap, base * 2**n)`
("equal jitter": never less than half the exponential step, so a busy server is not hammered,
and never in lockstep with other clients). A server's `Retry-After` is a floor on the wait.

>>> import random
>>> policy = Backoff(base=1.0, cap=8.0)
>>> [round(policy.delay(n, rng=random.Random(0)), 3) for n in range(5)]
[0.922, 1.844, 3.689, 7.378, 7.378]
>>> policy.delay(0, retry_after=30.0, rng=random.Random(0))
30.0
>>> parse_retry_after("120"), parse_retry_after(None), parse_retry_after("soon")
(120.0, None, None)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after the n-th consecutive failure (n = 0 for the first)."""

    base: float = 2.0  # seconds before the first retry (upper bound of its jitter range)
    cap: float = 600.0  # the longest exponential wait
    max_retry_after: float = 3600.0  # a server's Retry-After is honoured up to this

    def __post_init__(self) -> None:
        if not 0 < self.base <= self.cap:
            raise ValueError("backoff needs 0 < base <= cap")

    def delay(
        self, failures: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before the next attempt."""
        step = min(self.cap, self.base * 2.0 ** min(failures, 64))
        wait = step / 2 + (rng or random).random() * step / 2
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None if absent or
    unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
