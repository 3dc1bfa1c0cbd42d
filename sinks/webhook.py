"""An HTTP webhook sink: POST each batch of records (anomalies) as a JSON array to a URL.

For alerting tools that take JSON over HTTP. Each request is bounded (`sources/http.py`: a total
deadline, a cap on the answer's bytes, redirects to the same origin only); a missed deadline, a
connection error, 429 or 5xx is retried a bounded number of times with exponential backoff
and jitter (at least the server's `Retry-After`, capped); what still cannot be delivered, or what
the server refuses outright (another 4xx, a redirect to another origin), is appended to a
dead-letter JSON-lines file, one line per record with the reason, so nothing is lost silently.
A batch larger than `max_batch` is sent in chunks.

Sinks have no `next_awake`, so the waits between retries are bounded sleeps on the worker, in
`sources/retry.py`'s loop: `retries` and `backoff` set the worst case (by default about
2 + 4 + 8 s of waits and 4 deadlines of 30 s per chunk).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from core.dead_letters import dead_letter_record
from core.json_lines import to_line
from core.redaction import redact
from sinks.jsonlines import JsonLinesSink
from sources.http import (
    DEADLINE,
    TRANSIENT,
    HttpLimitError,
    HttpLimits,
    MiB,
    bounded_session,
    fetch,
    limits_from,
    where,
)
from sources.retry import CAUSE_CHARS, Backoff, attempts, cause, parse_retry_after, retrying

log = logging.getLogger("air_quality.webhook")
#: What an answer to a webhook may cost (its body is only quoted in a dead letter's reason).
LIMITS = HttpLimits(
    deadline_s=30.0, connect_s=5.0, read_s=10.0, max_bytes=MiB, max_decoded_bytes=MiB
)


class _Retryable(Exception):
    """A failed POST worth another attempt; `retry_after`: the server's Retry-After, if any."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _WebhookPartition(StatelessSinkPartition[Any]):
    def __init__(self, sink: WebhookSink, build_dead_letters: Callable[[], StatelessSinkPartition]):
        self._sink = sink
        self._session = bounded_session()
        self._session.headers.update({"Content-Type": "application/json", **sink.headers})
        self._build_dead_letters = build_dead_letters
        self._dead_letters: StatelessSinkPartition[Any] | None = None  # opened on first use
        self._rng = random.Random(sink.seed)

    def write_batch(self, items: list[Any]) -> None:
        size = self._sink.max_batch
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            failure = self._deliver(chunk)
            if failure is not None:
                log.error(
                    "could not deliver %d records to %s: %s",
                    len(chunk),
                    where(self._sink.url),
                    failure,
                )
                origin = f"webhook:{redact(self._sink.url)}"
                if self._dead_letters is None:
                    self._dead_letters = self._build_dead_letters()
                self._dead_letters.write_batch(
                    [dead_letter_record(failure, origin, record) for record in chunk]
                )

    def _deliver(self, chunk: list[Any]) -> str | None:
        """POST one chunk with bounded retries; None when delivered, else why not."""
        sink = self._sink
        body = ("[" + ",".join(to_line(record) for record in chunk) + "]").encode()
        retryer = retrying(
            f"POST of {len(chunk)} records to {where(sink.url)}",
            policy=sink.backoff,
            retries=sink.retries,
            rng=self._rng,
            transient=lambda exc: isinstance(exc, _Retryable),
            log=log,
            describe=str,
        )
        try:
            return retryer(self._post, body)
        except _Retryable as exc:
            return f"{exc} (after {attempts(retryer)} attempts)"

    def _post(self, body: bytes) -> str | None:
        """One POST: None when delivered, why not when retrying will not help; raises
        `_Retryable` for a failure that another attempt may not meet."""
        sink = self._sink
        try:
            answer = fetch(self._session, sink.url, data=body, method="POST", limits=sink.limits)
        except HttpLimitError as exc:
            if exc.status is not None and 200 <= exc.status < 300:
                return None  # delivered; only the answer's body broke a limit, and it is not used
            if exc.kind == DEADLINE or exc.status == 429 or (exc.status or 0) >= 500:
                raise _Retryable(exc.reason) from None
            return exc.reason  # a redirect elsewhere, an answer that does not decode
        except TRANSIENT as exc:
            raise _Retryable(redact(cause(exc, limit=10**6), sink.url)[:CAUSE_CHARS]) from None
        if 200 <= answer.status < 300:
            return None
        failure = f"HTTP {answer.status}: {answer.snippet()}"
        if answer.status == 429 or answer.status >= 500:
            raise _Retryable(failure, parse_retry_after(answer.headers.get("Retry-After")))
        return failure  # the server refuses this content: retrying will not help

    def close(self) -> None:
        self._session.close()
        if self._dead_letters is not None:
            self._dead_letters.close()


class WebhookSink(DynamicSink[Any]):
    """POST records as JSON arrays to `url`; undeliverable ones go to `dead_letters` (a path).

    `limits` (`sources.http.HttpLimits` or its fields) bound each request: a total deadline,
    the bytes of the answer, same-origin redirects only; `timeout` is (connect, read) seconds (it
    sets the limits' `connect_s` and `read_s`); `retries` is how many times a failed request
    is tried again; `backoff` is a `Backoff` or its options, and its `max_retry_after` caps how
    long a server's `Retry-After` can hold a worker.
    """

    def __init__(
        self,
        url: str,
        *,
        dead_letters: str,
        timeout: tuple[float, float] | None = None,
        limits: HttpLimits | Mapping[str, Any] | None = None,
        retries: int = 3,
        backoff: Backoff | Mapping[str, float] | None = None,
        max_batch: int = 500,
        headers: dict[str, str] | None = None,
        seed: int | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s): {url!r}")
        if retries < 0 or max_batch < 1:
            raise ValueError("retries must be >= 0 and max_batch >= 1")
        self.url = url
        self.dead_letters = JsonLinesSink(dead_letters)
        self.limits = limits_from(limits, timeout=timeout, default=LIMITS)
        self.retries = retries
        if isinstance(backoff, Mapping):
            backoff = Backoff(**backoff)
        self.backoff = backoff or Backoff(base=2.0, cap=30.0, max_retry_after=60.0)
        self.max_batch = max_batch
        self.headers = dict(headers or {})
        self.seed = seed

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _WebhookPartition:
        dead = self.dead_letters
        return _WebhookPartition(self, lambda: dead.build(step_id, worker_index, worker_count))
