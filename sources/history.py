"""A resumable Bytewax source of sensors' history from PurpleAir's `GET /v1/sensors/{id}/history`.

The span `[start, end)` is cut into windows no longer than the endpoint allows for the
`average` (`SPAN_LIMITS`, or a shorter `chunk`). A partition (a shard of the sensors, by the
hash the flow keys sensors with) fetches one chunk per request, window by window: every sensor
of the window, then the window's rows merged in time order (the API does not sort them) and
emitted, so each sensor's readings reach the flow in time order, and all sensors of a shard
move through time together. The resume state is `(window, rows of it emitted)`: a flow resumed
from a recovery snapshot fetches that window again and skips what it had emitted, so nothing
is lost and nothing repeated (a crash costs at most one window's points again).

History rows carry no position (PurpleAir: "latitude ... does not currently work with
historical endpoints"), so the sensors' positions come from one `GET /v1/sensors` (or the
group's members) when the source is built, which also turns a bounding box or a group into its
sensors. A history row becomes a `GET /v1/sensors`-style row (`last_seen` = its `time_stamp`)
parsed by `sources.payload`, so its readings and dead letters are the live poller's.

Answers: 429 and 5xx, timeouts and broken connections are retried with backoff (at least the
`Retry-After`); a body that is not a history answer is a dead letter and the chunk is asked
again (given up, as one more dead letter, after `MAX_BAD_ANSWERS`); 402 stops the run
(`PaymentRequired`), 401/403 fail it (`PurpleAirAuthError`), any other status is a request
error; each is one line. Every request is priced before it is sent (`sources.points`) and
checked against the points budget.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import requests
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from core.readings import DeadLetter, Item, Reading
from sources.documents import SourceError
from sources.http import DEADLINE, HttpLimitError, HttpLimits, fetch
from sources.payload import PayloadError, decode_line, parse_payload
from sources.points import (
    BASE_COST,
    BudgetExceeded,
    PointsLedger,
    history_rows,
    request_cost,
)
from sources.poller import (
    API_KEY_ENV,
    PUBLIC_API,
    TRANSIENT,
    PurpleAirAuthError,
    PurpleAirRequestError,
)
from sources.poller import DEFAULT_FIELDS as POLLED_FIELDS
from sources.purpleair import sensor_owner
from sources.retry import Backoff, parse_retry_after

DAY = 86400
#: The longest span one history request may cover, by `average` (minutes; 0 = real time):
#: PurpleAir's "Loop API Calls for Historical Data" (community.purpleair.com/t/4623, current
#: version; an earlier version of the page gave 2, 3, 7, 14, 90 and 365 days for the first six).
SPAN_LIMITS = {
    0: 30 * DAY,
    10: 60 * DAY,
    30: 90 * DAY,
    60: 180 * DAY,
    360: 365 * DAY,
    1440: 730 * DAY,
    10080: 5 * 365 * DAY,
    43200: 20 * 365 * DAY,
    525600: 100 * 365 * DAY,
}
#: The environment variable of private sensors' read keys: `sensor=key,sensor=key`.
READ_KEYS_ENV = "PURPLEAIR_READ_KEYS"
#: What the flow needs by default that the history endpoint gives (the live poller's fields
#: without `last_seen`, `latitude`, `longitude`, which history rows lack, and `channel_flags`).
DEFAULT_HISTORY_FIELDS = tuple(
    name
    for name in POLLED_FIELDS
    if name not in ("last_seen", "latitude", "longitude", "channel_flags")
)
#: Fields a history request cannot ask for (not given by the endpoint, or always there).
NOT_HISTORY = frozenset(
    {"sensor_index", "last_seen", "latitude", "longitude", "channel_flags", "time_stamp", "name"}
)
#: Bad answers to one chunk in a row before it is given up (as a dead letter).
MAX_BAD_ANSWERS = 5

log = logging.getLogger("air_quality.history")


class PaymentRequired(SourceError):
    """PurpleAir answered 402: the key's project has no points left."""


class PointsBudgetExceeded(SourceError):
    """The points budget says stop."""


def parse_time(text: str) -> int:
    """Epoch seconds from epoch digits, a date (`2024-01-01`, midnight UTC) or ISO 8601.

    >>> parse_time("2024-01-01"), parse_time("1704067200"), parse_time("2024-01-01T01:00:00Z")
    (1704067200, 1704067200, 1704070800)
    """
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time (a date, ISO 8601 or epoch seconds)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def read_keys_from_env(name: str = READ_KEYS_ENV) -> dict[int, str]:
    """Private sensors' read keys from `sensor=key,sensor=key` in the environment variable."""
    keys: dict[int, str] = {}
    for part in os.environ.get(name, "").split(","):
        if part.strip():
            sensor, _, key = part.partition("=")
            if not sensor.strip().isdigit() or not key.strip():
                raise ValueError(f"{name}: {part.strip()!r} is not sensor=key")
            keys[int(sensor)] = key.strip()
    return keys


class HistoryPlan:
    """The requests of a back-fill: sensors × windows, and what they cost at most.

    >>> plan = HistoryPlan([1, 2], 0, 100 * DAY, 10, ["pm2.5_atm_a"])
    >>> plan.windows
    [(0, 5184000), (5184000, 8640000)]
    >>> plan.requests, plan.max_rows, plan.max_points
    (4, 28800, 28820)
    """

    def __init__(
        self,
        sensors: Sequence[int],
        start: int,
        end: int,
        average: int,
        fields: Sequence[str],
        chunk: int | None = None,
    ):
        if average not in SPAN_LIMITS:
            allowed = ", ".join(map(str, SPAN_LIMITS))
            raise ValueError(f"average {average} is not one of the API's: {allowed} (minutes)")
        if end <= start:
            raise ValueError("the span is empty: end must be after start")
        limit = SPAN_LIMITS[average]
        if chunk is not None and not 0 < chunk <= limit:
            raise ValueError(f"chunk must be from 1 to {limit} s (the API's span for {average})")
        bad = sorted(set(fields) & NOT_HISTORY)
        if bad:
            raise ValueError(f"fields the history endpoint does not give: {', '.join(bad)}")
        if not fields:
            raise ValueError("no fields to ask for")
        self.sensors = list(sensors)
        self.start, self.end, self.average = start, end, average
        self.fields = tuple(dict.fromkeys(fields))
        step = chunk or limit
        self.windows = [(a, min(a + step, end)) for a in range(start, end, step)]

    @property
    def requests(self) -> int:
        return len(self.sensors) * len(self.windows)

    @property
    def max_rows(self) -> int:
        return len(self.sensors) * history_rows(self.start, self.end, self.average)

    @property
    def max_points(self) -> int:
        per_sensor = sum(
            request_cost("history", self.fields, history_rows(a, b, self.average))
            for a, b in self.windows
        )
        return len(self.sensors) * per_sensor

    def describe(self) -> str:
        """The dry run's line: requests, rows and points at most."""
        first = datetime.fromtimestamp(self.start, UTC).isoformat()
        last = datetime.fromtimestamp(self.end, UTC).isoformat()
        return (
            f"history back-fill: {len(self.sensors):,} sensors from {first} to {last} at "
            f"average={self.average}, {len(self.fields)} fields: {self.requests:,} requests "
            f"of at most {(self.windows[0][1] - self.windows[0][0]) / DAY:g} days, at most "
            f"{self.max_rows:,} rows, at most {self.max_points:,} points"
        )


class HistoryPosition(NamedTuple):
    """Where a shard goes on: the window, and how many of its merged rows were emitted."""

    window: int = 0
    emitted: int = 0


class _HistoryPartition(StatefulSourcePartition[Item, HistoryPosition]):
    def __init__(
        self, source: HistorySource, part: str, sensors: list[int], resume: HistoryPosition
    ):
        self._source = source
        self._part = part
        self._sensors = sensors
        self._position = resume
        self._session = requests.Session()
        self._session.headers["X-API-Key"] = source.api_key()
        self._rng = random.Random(source.seed)
        self._next_awake: datetime | None = None
        self._fetched: list[Item] = []  # this window's items so far
        self._next_sensor = 0
        self._pending: list[Item] | None = None  # the window's items, merged
        self._failures = 0
        self._bad = 0
        self._done_chunks = resume.window * len(sensors)

    def next_awake(self) -> datetime | None:
        return self._next_awake

    def snapshot(self) -> HistoryPosition:
        return self._position

    def close(self) -> None:
        self._session.close()

    def next_batch(self) -> list[Item]:
        self._next_awake = None
        window, emitted = self._position
        if self._pending is not None:
            size = self._source.batch_size
            batch = self._pending[emitted : emitted + size]
            emitted += len(batch)
            if emitted >= len(self._pending):
                self._position = HistoryPosition(window + 1, 0)
                self._pending = None
            else:
                self._position = HistoryPosition(window, emitted)
            return batch
        if window >= len(self._source.plan.windows) or self._source.stopped is not None:
            raise StopIteration()
        if self._next_sensor >= len(self._sensors):
            self._pending = merge(self._fetched)
            self._fetched, self._next_sensor = [], 0
            return []
        try:
            return self._fetch(
                self._sensors[self._next_sensor], *self._source.plan.windows[window]
            )
        except (PaymentRequired, PointsBudgetExceeded) as stop:
            # the input ends here, its position kept for a resume; no worker raises, so the
            # engine prints no panic, and the caller says why it stopped (`stopped`)
            self._source.stop(stop)
            raise StopIteration() from None

    def _fetch(self, sensor: int, start: int, end: int) -> list[Item]:
        source = self._source
        rows = history_rows(start, end, source.plan.average)
        estimate = request_cost("history", source.plan.fields, rows)
        try:
            wait = source.ledger.wait_for(estimate)
        except BudgetExceeded as exc:
            raise PointsBudgetExceeded(str(exc)) from None
        if wait > 0:
            log.warning("points budget: %s; waiting %.0f s", source.ledger.summary(), wait)
            return self._wait(wait)
        url = f"{source.base_url}/sensors/{sensor}/history"
        params = source.params(sensor, start, end)
        where = f"{url}?start_timestamp={start}&end_timestamp={end}"
        try:
            answer = fetch(self._session, url, params=params, limits=source.limits)
        except TRANSIENT as exc:
            return self._retry(f"{type(exc).__name__}: {exc}", where, None)
        except HttpLimitError as exc:
            if exc.kind == DEADLINE:
                return self._retry(exc.reason, where, None)
            return self._bad_answer(DeadLetter(exc.reason, where, where), where)
        status = answer.status
        if status == 402:
            source.ledger.spend("history", 0)
            raise PaymentRequired(
                f"PurpleAir answered 402 Payment Required for sensor {sensor}: the API key's "
                f"project has no points left ({source.ledger.summary()}); add points, then run "
                "again with the same recovery directory to go on"
            )
        if status in (401, 403):
            raise PurpleAirAuthError(
                f"PurpleAir answered HTTP {status} for sensor {sensor}: the key in "
                f"{source.api_key_env} (or the sensor's read key in {READ_KEYS_ENV}) was "
                f"refused ({answer.body[:200]!r})"
            )
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"))
            return self._retry(f"HTTP {status}", where, retry_after)
        if status != 200:
            raise PurpleAirRequestError(
                f"PurpleAir answered HTTP {status} to {where}: {answer.body[:300]!r}"
            )
        self._failures = 0
        items, points = history_items(answer.body, sensor, start, end, source.positions, where)
        if points < 0:  # not a history answer: its dead letter now, and the chunk asked again
            source.ledger.spend("history", BASE_COST["history"])
            return self._bad_answer(items[0], where)
        source.ledger.spend("history", points)
        self._fetched.extend(items)
        self._advance(sum(type(i) is Reading for i in items))
        return []

    def _bad_answer(self, letter: DeadLetter, where: str) -> list[Item]:
        """An answer that is not a history answer: its dead letter, emitted at once (a resumed
        run may not meet it again), and the chunk asked again, or given up after
        `MAX_BAD_ANSWERS` in a row (one more dead letter: nothing is dropped unsaid)."""
        self._bad += 1
        if self._bad < MAX_BAD_ANSWERS:
            return [letter, *self._retry(letter.reason, where, None)]
        reason = f"chunk given up after {self._bad} answers that were not history answers"
        self._advance(0)
        return [letter, DeadLetter(reason, where, where)]

    def _advance(self, rows: int) -> None:
        """The chunk is done: on to the next sensor of the window."""
        self._bad = 0
        self._next_sensor += 1
        self._done_chunks += 1
        if self._source.progress is not None:
            total = len(self._sensors) * len(self._source.plan.windows)
            self._source.progress(self._part, self._done_chunks, total, rows)

    def _wait(self, seconds: float) -> list[Item]:
        self._next_awake = self._source.clock() + timedelta(seconds=seconds)
        return []

    def _retry(self, what: str, where: str, retry_after: float | None) -> list[Item]:
        wait = self._source.backoff.delay(self._failures, retry_after=retry_after, rng=self._rng)
        self._failures += 1
        log.warning(
            "%s from %s (failure %d in a row), retrying in %.2f s",
            what,
            where,
            self._failures,
            wait,
        )
        return self._wait(wait)


def merge(items: list[Item]) -> list[Item]:
    """A window's items in one order whatever order the answers gave them in (a resumed run
    skips what was emitted by counting): dead letters first, then readings by time, sensor
    and (a rare tie) values."""
    dead = sorted((i for i in items if type(i) is not Reading), key=lambda d: repr(d.raw))
    readings = sorted((i for i in items if type(i) is Reading), key=_time_sensor)
    if any(map(_same_slot, readings, readings[1:])):
        readings.sort(key=lambda r: (r.time, r.sensor_index, repr(r.values)))
    return [*dead, *readings]


def _time_sensor(reading: Reading) -> tuple[int, int]:
    return reading.time, reading.sensor_index


def _same_slot(a: Reading, b: Reading) -> bool:
    return a.time == b.time and a.sensor_index == b.sensor_index


def history_items(
    body: bytes,
    sensor: int,
    start: int,
    end: int,
    positions: Mapping[int, tuple[float | None, float | None]],
    origin: str,
) -> tuple[list[Item], int]:
    """One history answer's readings and dead letters, and its points (-1 when the body is not
    a history answer, whose one dead letter is then returned)."""
    try:
        answer = decode_line(body)
        fields, rows = answer["fields"], answer["data"]
        if not isinstance(fields, list) or not isinstance(rows, list) or "time_stamp" not in fields:
            raise PayloadError("no 'fields' list with 'time_stamp' and 'data' list")
        if not all(isinstance(f, str) for f in fields) or len(set(fields)) != len(fields):
            raise PayloadError("'fields' is not a list of distinct names")
    except (PayloadError, KeyError, TypeError) as exc:
        reason = exc if isinstance(exc, PayloadError) else f"not a history answer: {exc!r}"
        return [DeadLetter(f"not a history answer: {reason}", body, origin)], -1
    lat, lon = positions.get(sensor, (None, None))
    t = fields.index("time_stamp")
    rest = [i for i, f in enumerate(fields) if f != "time_stamp" and f not in NOT_HISTORY]
    names = ["sensor_index", "last_seen", "latitude", "longitude", *(fields[i] for i in rest)]
    items: list[Item] = []
    data = []
    for n, row in enumerate(rows):
        if type(row) is not list or len(row) != len(fields):
            data.append(row)  # parse_payload makes it a dead letter with its reason
            continue
        when = row[t]
        if type(when) is int and not start <= when < end:
            reason = f"time_stamp {when} is outside the chunk asked for [{start}, {end})"
            items.append(DeadLetter(reason, row, f"{origin}#row{n}"))
            continue
        data.append([sensor, when, lat, lon, *(row[i] for i in rest)])
    payload = {"fields": names, "data": data}
    items.extend(parse_payload(payload, origin=origin))
    paid = [f for f in fields if f not in ("sensor_index", "time_stamp")]
    return items, request_cost("history", paid, len(rows))


class HistorySource(FixedPartitionedSource[Item, HistoryPosition]):
    """Sensors' history from the PurpleAir API, resumable chunk by chunk, priced in points.

    Sensors: `sensors` (indexes), or those of `bbox` (`nwlng, nwlat, selng, selat`) or of the
    group `group` (found when the source is built). `start`/`end`: epoch seconds (end
    excluded); `average`: minutes (0 real time, 10, 30, 60, 360, 1440, ...); `fields`: what to
    ask for; `chunk`: seconds per request (default and at most the API's span for `average`);
    `read_keys`: private sensors' read keys (else from `PURPLEAIR_READ_KEYS`); `shards`:
    partitions; `ledger`: the points budget and count; `limits`: each request's
    (`sources.http`); `progress(part, done, total, rows)` is told of each chunk. `positions`
    (sensor: latitude, longitude) skips the positions request.
    """

    def __init__(
        self,
        sensors: Iterable[int] | None = None,
        *,
        start: int,
        end: int,
        average: int = 10,
        fields: Sequence[str] = DEFAULT_HISTORY_FIELDS,
        bbox: Sequence[float] | None = None,
        group: int | None = None,
        base_url: str = PUBLIC_API,
        api_key_env: str = API_KEY_ENV,
        read_keys: Mapping[int, str] | None = None,
        chunk: int | None = None,
        shards: int = 1,
        batch_size: int = 1000,
        ledger: PointsLedger | None = None,
        backoff: Backoff | None = None,
        limits: HttpLimits | None = None,
        positions: Mapping[int, tuple[float | None, float | None]] | None = None,
        progress: Callable[[str, int, int, int], None] | None = None,
        seed: int | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        if sum(x is not None for x in (sensors, bbox, group)) != 1:
            raise ValueError("give exactly one of sensors, bbox or group")
        if shards < 1 or batch_size < 1:
            raise ValueError("shards and batch_size must be at least 1")
        if bbox is not None and len(bbox) != 4:
            raise ValueError("bbox is (nwlng, nwlat, selng, selat)")
        self.base_url = base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.read_keys = dict(read_keys) if read_keys is not None else read_keys_from_env()
        self.shards, self.batch_size = shards, batch_size
        self.ledger = ledger or PointsLedger()
        self.backoff = backoff or Backoff()
        self.limits = limits or HttpLimits(deadline_s=120.0)
        self.progress = progress
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(UTC))
        wanted = None if sensors is None else sorted({int(s) for s in sensors})
        HistoryPlan(wanted or [0], start, end, average, fields, chunk)  # its options' checks
        if positions is None:
            positions = self._positions(wanted, bbox, group)
        self.positions = dict(positions)
        found = sorted(self.positions) if wanted is None else wanted
        if not found:
            raise SourceError("no sensors: the bounding box or group has none")
        missing = [s for s in found if self.positions.get(s, (None, None))[0] is None]
        if missing:
            log.warning("no position for sensors %s: their readings have none", missing[:20])
        self.plan = HistoryPlan(found, start, end, average, fields, chunk)
        #: Why the back-fill stopped before its end (402, or the points budget), else None.
        self.stopped: SourceError | None = None

    def stop(self, reason: SourceError) -> None:
        """End every partition's input at its next batch, keeping the first reason."""
        if self.stopped is None:
            self.stopped = reason

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise PurpleAirAuthError(
                f"no PurpleAir API key: set the environment variable {self.api_key_env}"
            )
        return key

    def params(self, sensor: int, start: int, end: int) -> dict[str, str]:
        """The query of one chunk of one sensor's history."""
        params = {
            "start_timestamp": str(start),
            "end_timestamp": str(end),
            "average": str(self.plan.average),
            "fields": ",".join(self.plan.fields),
        }
        if sensor in self.read_keys:
            params["read_key"] = self.read_keys[sensor]
        return params

    def _positions(
        self, sensors: list[int] | None, bbox: Sequence[float] | None, group: int | None
    ) -> dict[int, tuple[float | None, float | None]]:
        """Sensors' positions (and the sensors of a box or group): one request, priced."""
        params: dict[str, str] = {"fields": "latitude,longitude"}
        if group is not None:
            url, endpoint = f"{self.base_url}/groups/{int(group)}/members", "members"
        else:
            url, endpoint = f"{self.base_url}/sensors", "sensors"
        if sensors is not None:
            params["show_only"] = ",".join(map(str, sensors))
        if bbox is not None:
            for name, value in zip(("nwlng", "nwlat", "selng", "selat"), bbox, strict=True):
                params[name] = repr(float(value))
        if self.read_keys:
            params["read_keys"] = ",".join(self.read_keys.values())
        session = requests.Session()
        session.headers["X-API-Key"] = self.api_key()
        try:
            answer = fetch(session, url, params=params, limits=self.limits)
        except (*TRANSIENT, HttpLimitError) as exc:
            raise SourceError(f"cannot read {url}: {type(exc).__name__}: {exc}") from None
        finally:
            session.close()
        if answer.status in (401, 403):
            raise PurpleAirAuthError(
                f"PurpleAir answered HTTP {answer.status} to {url}: the key in "
                f"{self.api_key_env} was refused"
            )
        if answer.status == 402:
            raise PaymentRequired(f"PurpleAir answered 402 Payment Required to {url}: no points")
        if answer.status != 200:
            raise SourceError(
                f"PurpleAir answered HTTP {answer.status} to {url}: {answer.body[:300]!r}"
            )
        try:
            payload = decode_line(answer.body)
            fields, rows = payload["fields"], payload["data"]
            s, a, b = (fields.index(n) for n in ("sensor_index", "latitude", "longitude"))
            found = {row[s]: (row[a], row[b]) for row in rows}
        except (PayloadError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise SourceError(f"the sensors' positions from {url} cannot be read: {exc}") from None
        self.ledger.spend(endpoint, request_cost(endpoint, ["latitude", "longitude"], len(rows)))
        return found

    def list_parts(self) -> list[str]:
        digits = len(str(self.shards - 1))  # names sort as numbers do (see ShardedFileSource)
        return [f"history-{i:0{digits}d}-of-{self.shards}" for i in range(self.shards)]

    def build_part(
        self, step_id: str, for_part: str, resume_state: HistoryPosition | None
    ) -> _HistoryPartition:
        shard = int(for_part.split("-")[1])
        owns = sensor_owner(shard, self.shards)
        sensors = [s for s in self.plan.sensors if self.shards == 1 or owns(s)]
        resume = HistoryPosition(*resume_state) if resume_state is not None else HistoryPosition()
        if resume.emitted:
            log.warning(
                "resuming %s at window %d: its chunks are asked for again, %d rows skipped",
                for_part,
                resume.window,
                resume.emitted,
            )
        return _HistoryPartition(self, for_part, sensors, resume)
