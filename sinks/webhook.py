"""An HTTP webhook sink: POST each batch of records (anomalies) as a JSON array to a URL.

For alerting tools that take JSON over HTTP. Each request has a timeout; a timeout, connection
error, 429 or 5xx is retried a bounded number of times with exponential backoff and jitter (at
least the server's `Retry-After`, capped); what still cannot be delivered, or what the server
refuses outright (another 4xx), is appended to a dead-letter JSON-lines file, one line per record
with the reason, so nothing is lost silently. A batch larger than `max_batch` is sent in chunks.

Sinks have no `next_awake`, so the waits between retries are bounded sleeps on the worker:
`retries` and `backoff` set the worst case (by default about 2 + 4 + 8 s per chunk).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from sinks.dead_letters import dead_letter_record
from sinks.jsonlines import JsonLinesSink, to_line
from sinks.redaction import redact
from sources.backoff import Backoff, parse_retry_after

log = logging.getLogger("air_quality.webhook")


class _WebhookPartition(StatelessSinkPartition[Any]):
    def __init__(self, sink: WebhookSink, build_dead_letters: Callable[[], StatelessSinkPartition]):
        self._sink = sink
        self._session = requests.Session()
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
                    len(chunk), redact(self._sink.url), failure,
                )  # fmt: skip
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
        failure = ""
        for attempt in range(sink.retries + 1):
            retry_after = None
            try:
                response = self._session.post(sink.url, data=body, timeout=sink.timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                failure = redact(f"{type(exc).__name__}: {exc}", sink.url)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return None
                failure = f"HTTP {status}: {response.text[:200]!r}"
                if status != 429 and status < 500:
                    return failure  # the server refuses this content: retrying will not help
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == sink.retries:
                break
            wait = sink.backoff.delay(attempt, retry_after=retry_after, rng=self._rng)
            shown = redact(sink.url)
            log.warning("%s from %s, retry %d in %.2f s", failure, shown, attempt + 1, wait)
            time.sleep(wait)
        return f"{failure} (after {sink.retries + 1} attempts)"

    def close(self) -> None:
        self._session.close()
        if self._dead_letters is not None:
            self._dead_letters.close()


class WebhookSink(DynamicSink[Any]):
    """POST records as JSON arrays to `url`; undeliverable ones go to `dead_letters` (a path).

    `timeout` is (connect, read) seconds; `retries` is how many times a failed request is tried
    again; `backoff` is a `Backoff` or its options, and its `max_retry_after` caps how long a
    server's `Retry-After` can hold a worker.
    """

    def __init__(
        self,
        url: str,
        *,
        dead_letters: str,
        timeout: tuple[float, float] = (5.0, 10.0),
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
        self.timeout = timeout
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
