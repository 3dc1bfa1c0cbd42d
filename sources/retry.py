"""One way to ride out an outage: the waits (`Backoff`), the loop (`retrying`, on tenacity), and
the one short line each retry logs (`cause`).

The n-th consecutive failure waits a random time in `[d/2, d]` where `d = min(cap, base * 2**n)`
("equal jitter": never less than half the exponential step, so a busy server is not hammered,
and never in lockstep with other clients). A server's `Retry-After` is a floor on the wait, up
to `max_retry_after`. The jitter draws from the caller's own `random.Random`, so a `seed` option
replays the same waits (tenacity's own jittered waits draw from the global `random` module,
which one component cannot seed without seeding every other one).

The sinks (webhook, database) wait in `retrying`'s loop (tenacity's `Retrying`: stop after the
retry budget, retry only what is transient, log before each sleep). The live poller must not
sleep (a Bytewax source waits through `next_awake`), so it asks the same `Backoff` for the wait
and logs the same line with `retry_line`.

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

import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import tenacity

#: The longest cause a retry line shows, in characters.
CAUSE_CHARS = 160
#: What urllib3 puts before its messages: object addresses, the connection's class and address.
_NOISE = re.compile(
    r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*|\b\w*(?:Connection|Pool)\(host=[^)]*\):\s*"
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait after the n-th consecutive failure (n = 0 for the first)."""

    base: float = 2.0  # seconds before the first retry (upper bound of its jitter range)
    cap: float = 600.0  # the longest exponential wait
    max_retry_after: float = 3600.0  # a server's Retry-After is honoured up to this

    def __post_init__(self) -> None:
        values = (self.base, self.cap, self.max_retry_after)
        if not all(math.isfinite(v) for v in values) or self.max_retry_after < 0:
            raise ValueError("backoff needs finite numbers and max_retry_after >= 0")
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


def cause(error: BaseException | str, limit: int = CAUSE_CHARS) -> str:
    """What went wrong, in one short line: the first line of the innermost error of a wrapped one
    (requests wraps urllib3's, which wraps the socket's), without object addresses, cut to
    `limit` characters.

    >>> import requests, urllib3
    >>> inner = urllib3.exceptions.NewConnectionError(
    ...     object(), "Failed to establish a new connection: [Errno 111] Connection refused")
    >>> outer = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v1", inner))
    >>> cause(outer)
    'NewConnectionError: Failed to establish a new connection: [Errno 111] Connection refused'
    >>> cause("x" * 300, limit=20)
    'xxxxxxxxxxxxxxxxxxx…'
    """
    if isinstance(error, BaseException):
        inner, seen = error, {id(error)}
        while True:
            reason = getattr(inner, "reason", None)
            first = inner.args[0] if inner.args else None
            deeper = next(
                (e for e in (reason, first) if isinstance(e, BaseException) and id(e) not in seen),
                None,
            )
            if deeper is None:
                break
            seen.add(id(deeper))
            inner = deeper
        text = _NOISE.sub("", next((ln for ln in str(inner).splitlines() if ln.strip()), ""))
        text = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    else:
        text = error
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_line(
    what: str, why: BaseException | str, retry: int, retries: int | None, wait: float
) -> str:
    """The one line logged before a retry: what failed, why, which retry, and the wait."""
    budget = f"retry {retry}" if retries is None else f"retry {retry} of {retries}"
    return f"{what} ({cause(why)}); {budget} in {wait:.1f} s"


class _Wait(tenacity.wait.wait_base):
    """`Backoff` as a tenacity wait, drawing its jitter from one `random.Random`."""

    def __init__(self, policy: Backoff, rng: random.Random):
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return self.policy.delay(
            retry_state.attempt_number - 1, retry_after=retry_after, rng=self.rng
        )


def retrying(
    what: str,
    *,
    policy: Backoff,
    retries: int,
    rng: random.Random,
    transient: Callable[[BaseException], bool],
    log: logging.Logger,
    describe: Callable[[BaseException], str] = cause,
    sleep: Callable[[float], None] = time.sleep,
) -> tenacity.Retrying:
    """A tenacity loop: an attempt that raises a `transient` error is tried again, up to
    `retries` more times, after `policy`'s wait (at least the error's `retry_after`, if it has
    one), logging one `retry_line` (the error told by `describe`); the last error, or any other,
    is raised as it is."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        why = describe(error) if error is not None else "?"
        log.warning(retry_line(what, why, state.attempt_number, retries, wait))

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=_Wait(policy, rng),
        retry=tenacity.retry_if_exception(transient),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )


def attempts(retryer: tenacity.Retrying) -> int:
    """How many attempts the last call of `retryer` made."""
    return int(retryer.statistics.get("attempt_number", 1))
