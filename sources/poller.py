"""A Bytewax source that polls the PurpleAir API (`GET /v1/sensors`) for live readings.

One partition polls at a fixed cadence (default every 120 s, PurpleAir's 2-minute averages). Each
poll after the first sends `modified_since` = the previous response's `data_time_stamp`, so only
sensors that changed come back; that stamp is also the partition's resume state, so a flow
restarted from a recovery snapshot asks only for what changed since. Rows become readings or dead
letters exactly as in the file source, and a reading identical to its sensor's last one is
dropped.

Each poll is bounded (`sources/http.py`): a total deadline, a cap on the answer's bytes on the
wire and decoded, and redirects followed only to the same origin, so the key goes nowhere else.

Faults: timeouts, a missed deadline, connection errors, bodies cut off in transfer or that do not
decompress, 429 and 5xx are retried with exponential backoff and jitter (at least the server's
`Retry-After`); a malformed body (not JSON, or a payload whose envelope is broken, whose stamp
is then not taken; an older stamp than the last, as a stale cached answer has, is not taken
either) is a dead letter and the next poll asks again from the same stamp (nor is a stamp more
than `MAX_STAMP_AHEAD` ahead of the clock taken, which would hide every answer until then); an
answer over the byte caps is a dead letter with the reason, and the next poll asks again at the
interval; 401/403 stop the flow with a message naming the key's environment variable; any other
status, or a redirect to another origin, is a configuration error and stops the flow too. All
waits go through `next_awake`, never `sleep`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from core.logs import ensure_stderr_handler
from core.readings import DeadLetter, Item, Reading
from sources.counters import POINTS
from sources.documents import SourceError
from sources.http import (
    DEADLINE,
    ENCODING,
    REDIRECT,
    TRANSIENT,
    HttpLimitError,
    HttpLimits,
    MiB,
    bounded_session,
    fetch,
    limits_from,
    where,
)
from sources.payload import DEFAULT_WINDOW, PayloadError, decode_line, parse_payload, payload_shape
from sources.points import BASE_COST, request_cost, row_cost
from sources.retry import Backoff, parse_retry_after, retry_line
from sources.times import TimeWindow

#: The public API; `base_url` replaces it (tests use a server on 127.0.0.1).
PUBLIC_API = "https://api.purpleair.com/v1"
#: The environment variable that holds the PurpleAir read key (sent as `X-API-Key`).
API_KEY_ENV = "PURPLEAIR_API_KEY"
#: What the flow needs by default: event time, position (the neighbour rules), the imputed
#: fields, the detector's feature, the EPA correction's input, and both laser channels with
#: PurpleAir's own channel flags (the channel rules). (The API always returns `sensor_index`.)
DEFAULT_FIELDS = (
    "last_seen",
    "latitude",
    "longitude",
    "humidity",
    "temperature",
    "pressure",
    "pm1.0_cf_1",
    "pm2.5_cf_1",
    "pm10.0_cf_1",
    "pm2.5_atm",
    "pm1.0_cf_1_a",
    "pm1.0_cf_1_b",
    "pm2.5_cf_1_a",
    "pm2.5_cf_1_b",
    "pm10.0_cf_1_a",
    "pm10.0_cf_1_b",
    "channel_flags",
)
#: The shortest interval allowed against a non-local server (PurpleAir updates every 2 minutes).
MIN_INTERVAL = 60.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Seconds a body's `data_time_stamp` may be ahead of the clock (the server's clock may be a
#: little off) and still be the next `modified_since`; one further ahead (a broken clock, a
#: forged answer, year 9999) would make the API answer "nothing changed" until then.
MAX_STAMP_AHEAD = 3600

log = logging.getLogger("air_quality.poller")
#: What one poll may cost by default: a minute in all, and an answer of up to 32 MiB, on the wire
#: and decoded (PurpleAir's answer for its 25,552 sensors with 16 fields is 2.75 MB; parsing a
#: body can take 13 times its size).
LIMITS = HttpLimits(
    deadline_s=60.0, connect_s=5.0, read_s=30.0, max_bytes=32 * MiB, max_decoded_bytes=32 * MiB
)


class PurpleAirAuthError(SourceError):
    """The API refused the key (401/403) or there is no key: the flow cannot go on."""


class PurpleAirRequestError(SourceError):
    """The API rejected the request itself (a 4xx other than 401/403/429): fix the options."""


def utc_now() -> datetime:
    """The current time, timezone-aware (what `next_awake` must return)."""
    return datetime.now(UTC)


def is_local(url: str) -> bool:
    """True when the URL's host is the loopback interface."""
    return (urlsplit(url).hostname or "") in LOCAL_HOSTS


class _PollerPartition(StatefulSourcePartition[Item, int | None]):
    def __init__(self, source: PurpleAirPoller, api_key: str, since: int | None):
        self._source = source
        self._url = source.base_url.rstrip("/") + "/sensors"
        self._session = bounded_session({"X-API-Key": api_key})
        self._since = since
        self._rng = random.Random(source.seed)
        self._next_awake = source.clock()
        self._failures = 0
        self._polls = 0
        self._last: dict[int, int] = {}  # sensor -> fingerprint of its last emitted reading

    def next_awake(self) -> datetime:
        return self._next_awake

    def snapshot(self) -> int | None:
        return self._since

    def close(self) -> None:
        self._session.close()

    def next_batch(self) -> list[Item]:
        source = self._source
        if source.max_polls is not None and self._polls >= source.max_polls:
            raise StopIteration()
        started = source.clock()
        params = source.params(self._since)
        try:
            answer = fetch(self._session, self._url, params=params, limits=source.limits)
        except TRANSIENT as exc:
            return self._retry(exc, None)
        except HttpLimitError as exc:
            if exc.kind in (DEADLINE, ENCODING):  # as a timeout, or a body broken in transfer
                return self._retry(exc, None)
            if exc.kind == REDIRECT:
                raise PurpleAirRequestError(
                    f"{where(self._url)}: {exc.reason}; point base_url at the API itself"
                ) from None
            self._answered(started)  # too big to read: a dead letter; ask again at the interval
            log.warning("answer from %s refused: %s", where(self._url), exc.reason)
            return [DeadLetter(exc.reason, b"", f"{self._url}#poll{self._polls}")]
        status = answer.status
        if status in (401, 403):
            raise PurpleAirAuthError(
                f"{self._url} answered HTTP {status}: the key in the environment variable "
                f"{source.api_key_env} was refused ({answer.snippet()})"
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), now=source.clock())
            return self._retry(f"HTTP {status}", retry_after)
        if status != 200:
            raise PurpleAirRequestError(
                f"{self._url} answered HTTP {status} to {params}: {answer.snippet(300)}"
            )
        self._answered(started)
        return self._items(answer.body, f"{self._url}#poll{self._polls}")

    def _answered(self, started: datetime) -> None:
        """A poll answered: the outage (if any) is over, the next poll is one interval on."""
        self._failures = 0
        self._polls += 1
        self._next_awake = started + self._source.interval

    def _retry(self, why: BaseException | str, retry_after: float | None) -> list[Item]:
        wait = self._source.backoff.delay(self._failures, retry_after=retry_after, rng=self._rng)
        self._failures += 1
        self._next_awake = self._source.clock() + timedelta(seconds=wait)
        log.warning(retry_line(f"poll of {where(self._url)}", why, self._failures, None, wait))
        return []

    def _items(self, body: bytes, origin: str) -> list[Item]:
        try:
            payload = decode_line(body)
        except PayloadError as exc:
            log.warning("malformed body from %s: %s", self._url, exc)
            return [DeadLetter(str(exc), body, origin)]
        data = payload.get("data") if isinstance(payload, dict) else None
        POINTS.labels("sensors").inc(request_cost("sensors", self._source.fields, len(data or ())))
        rows = parse_payload(payload, origin=origin, window=self._source.window)
        items = [item for item in rows if self._is_new(item)]
        try:  # the next poll asks from this answer's stamp only when its envelope is sound, and
            stamp = payload_shape(payload).data_time_stamp  # never back (a stale, cached answer)
        except PayloadError:
            stamp = None
        if stamp is None or (self._since is not None and stamp <= self._since):
            return items
        if stamp > self._source.clock().timestamp() + MAX_STAMP_AHEAD:
            log.warning("data_time_stamp %d from %s is in the future: not taken", stamp, self._url)
        else:
            self._since = stamp
        return items

    def _is_new(self, item: Item) -> bool:
        if not isinstance(item, Reading):
            return True
        fingerprint = hash((item.time, tuple(item.values.items()), tuple(item.text.items())))
        if self._last.get(item.sensor_index) == fingerprint:
            return False
        self._last[item.sensor_index] = fingerprint
        return True


class PurpleAirPoller(FixedPartitionedSource[Item, int | None]):
    """Readings (and dead letters) polled from the PurpleAir API, resumable from its last stamp.

    Filters are passed to the API as is: `location_type` (0 outside, 1 inside), `bbox`
    (`nwlng, nwlat, selng, selat`), `show_only` (sensor indexes), `max_age` (seconds).
    `interval` is seconds; `limits` (`sources.http.HttpLimits` or its fields) bound each poll
    (a total deadline, the answer's bytes, same-origin redirects only), and `timeout` (connect,
    read seconds) sets their `connect_s` and `read_s`; `backoff` is a `Backoff` or its options;
    `max_polls` stops after that many answered polls (None: never). A row whose time
    (`last_seen`, or the answer's `data_time_stamp` when it has none) is outside `window` is a
    dead letter. `clock` and `seed` exist for tests.
    """

    def __init__(
        self,
        base_url: str = PUBLIC_API,
        *,
        fields: Sequence[str] = DEFAULT_FIELDS,
        interval: float = 120.0,
        location_type: int | None = None,
        bbox: Sequence[float] | None = None,
        show_only: Iterable[int] | None = None,
        max_age: int | None = None,
        timeout: tuple[float, float] | None = None,
        limits: HttpLimits | Mapping[str, Any] | None = None,
        backoff: Backoff | Mapping[str, float] | None = None,
        max_polls: int | None = None,
        api_key_env: str = API_KEY_ENV,
        seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
        window: TimeWindow = DEFAULT_WINDOW,
    ):
        if interval < MIN_INTERVAL and not is_local(base_url):
            raise ValueError(
                f"interval {interval} s is below {MIN_INTERVAL:.0f} s: PurpleAir updates its "
                "averages every 2 minutes, so polling faster only costs API points"
            )
        if interval <= 0:
            raise ValueError("interval must be positive")
        if bbox is not None and len(bbox) != 4:
            raise ValueError("bbox is (nwlng, nwlat, selng, selat)")
        if location_type not in (None, 0, 1):
            raise ValueError("location_type is 0 (outside) or 1 (inside)")
        if max_polls is not None and max_polls < 1:
            raise ValueError("max_polls must be at least 1")
        self.base_url = base_url
        self.fields = tuple(fields)
        self.interval = timedelta(seconds=interval)
        self.filters: dict[str, str] = {}
        if location_type is not None:
            self.filters["location_type"] = str(location_type)
        if bbox is not None:
            for name, value in zip(("nwlng", "nwlat", "selng", "selat"), bbox, strict=True):
                self.filters[name] = repr(float(value))
        if show_only is not None:
            self.filters["show_only"] = ",".join(str(int(s)) for s in show_only)
        if max_age is not None:
            self.filters["max_age"] = str(int(max_age))
        self.limits = limits_from(limits, timeout=timeout, default=LIMITS)
        self.backoff = Backoff(**backoff) if isinstance(backoff, Mapping) else backoff or Backoff()
        self.max_polls = max_polls
        self.api_key_env = api_key_env
        self.seed = seed
        self.clock = clock or utc_now
        self.window = window

    def params(self, since: int | None) -> dict[str, Any]:
        """The query string of a poll: fields, filters and, after the first, modified_since."""
        params: dict[str, Any] = {"fields": ",".join(self.fields), **self.filters}
        if since is not None:
            params["modified_since"] = str(since)
        return params

    def list_parts(self) -> list[str]:
        return ["purpleair-api"]

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _PollerPartition:
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise PurpleAirAuthError(
                f"no PurpleAir API key: set the environment variable {self.api_key_env}"
            )
        ensure_stderr_handler(log)
        log.info(
            "polling %d fields at %d points a row (%s points a poll of N sensors: "
            "python -m sources.points live --sensors N gives a day's)",
            len(self.fields),
            row_cost(self.fields),
            f"{BASE_COST['sensors']} + {row_cost(self.fields)} N",
        )
        return _PollerPartition(self, key, resume_state)
