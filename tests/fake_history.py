"""A loopback stand-in for PurpleAir's history endpoint, its points and its refusals.

`GET /v1/sensors/{sensor_index}/history` as documented: `start_timestamp` (inclusive) and
`end_timestamp` (exclusive), epoch seconds or ISO 8601; `average` one of the API's (minutes);
`fields` (names the endpoint knows; a known name the data lacks comes back null); `read_key` for
a private sensor. A span longer than the average allows is refused (400
`InvalidTimestampSpanError`, the limits of PurpleAir's "Loop API Calls for Historical Data",
written out here again, not imported), rows are answered in no particular order (a seeded
shuffle: the API does not sort them), `fields` starts with `time_stamp`; the rows are served as
stored, whatever the average. A private sensor (`read_keys`) answers only with its read key and
is listed only for it. `GET /v1/sensors`
(`show_only` or a bounding box) and `GET /v1/groups/{id}/members` give positions.

Points: every answer is charged from this module's own table (base 5 a request; 2 a row for a
field averaged over the A and B channels, 1 for any other), and a request that would cost more
than is left is refused with 402 `PaymentRequiredError`, as the API does. `charged` is what was
spent. A wrong key is 403. `faults` maps a request number (0-based, history requests only) to
`("status", code, headers)` or `("body", bytes)`; with `hold_after=N`, history requests after the
N-th answer 503 (`Retry-After: 0`) until `release()`. Use it as a context manager.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-key"
DAY = 86400
SPAN_DAYS = {0: 30, 10: 60, 30: 90, 60: 180, 360: 365, 1440: 730, 10080: 1825, 43200: 7300}
SPAN_DAYS[525600] = 36500
#: Fields the history endpoint knows (those of the flow and a few more).
KNOWN = {
    "humidity",
    "temperature",
    "pressure",
    "voc",
    "rssi",
    "uptime",
    "pa_latency",
    "memory",
    *(
        f"{pm}_{kind}{ch}"
        for pm in ("pm1.0", "pm2.5", "pm10.0")
        for kind in ("atm", "cf_1", "alt")
        for ch in ("", "_a", "_b")
    ),
    *(f"{f}{ch}" for f in ("humidity", "temperature", "pressure") for ch in ("_a", "_b")),
}
AVERAGED = {f for f in KNOWN if f + "_a" in KNOWN}


def charge(fields: Sequence[str], rows: int) -> int:
    """What the fake charges for an answer."""
    return 5 + rows * sum(2 if f in AVERAGED else 1 for f in fields)


def history_from_polls(lines: Sequence[bytes]) -> tuple[dict[int, list[dict]], dict[int, tuple]]:
    """Each sensor's rows (`{"time_stamp": t, field: value, ...}`) and first position, from
    JSON lines of `GET /v1/sensors` payloads (last_seen as the row's time)."""
    rows: dict[int, list[dict]] = {}
    positions: dict[int, tuple] = {}
    for line in lines:
        payload = json.loads(line)
        fields = payload["fields"]
        for row in payload["data"]:
            record = dict(zip(fields, row, strict=True))
            sensor = record.pop("sensor_index")
            positions.setdefault(sensor, (record.pop("latitude"), record.pop("longitude")))
            record.pop("latitude", None), record.pop("longitude", None)
            record["time_stamp"] = record.pop("last_seen")
            rows.setdefault(sensor, []).append(record)
    return rows, positions


def _time(text: str) -> int:
    if text.lstrip("-").isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


class FakeHistory:
    """Sensors' history rows served on 127.0.0.1 with points, limits and faults."""

    def __init__(
        self,
        rows: Mapping[int, list[dict]],
        positions: Mapping[int, tuple],
        *,
        points: int = 10**12,
        read_keys: Mapping[int, str] | None = None,
        groups: Mapping[int, Sequence[int]] | None = None,
        faults: Mapping[int, tuple] | None = None,
        hold_after: int | None = None,
        api_key: str = API_KEY,
    ):
        self.rows = {s: sorted(r, key=lambda x: x["time_stamp"]) for s, r in rows.items()}
        self.positions = dict(positions)
        self.points = points
        self.charged = 0
        self.read_keys = dict(read_keys or {})
        self.groups = {g: list(m) for g, m in (groups or {}).items()}
        self.faults = dict(faults or {})
        self.hold_after = hold_after
        self.released = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.history_requests = 0
        self.answered = 0
        self.api_key = api_key
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def release(self) -> None:
        self.released.set()

    def __enter__(self) -> FakeHistory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _error(self, status: int, error: str, **headers: str) -> tuple:
        return status, headers, json.dumps({"error": error}).encode()

    def answer(self, path: str, query: dict[str, str], key: str | None) -> tuple:
        """(status, headers, body) of one request."""
        with self._lock:
            self.requests.append({"path": path, "query": query})
            if key != self.api_key:
                return self._error(403, "ApiKeyInvalidError")
            parts = path.strip("/").split("/")
            if parts == ["v1", "sensors"]:
                return self._sensors(query, None)
            if len(parts) == 4 and parts[:2] == ["v1", "groups"] and parts[3] == "members":
                members = self.groups.get(int(parts[2])) if parts[2].isdigit() else None
                if members is None:
                    return self._error(404, "NotFoundError")
                return self._sensors(query, members)
            if len(parts) == 4 and parts[:2] == ["v1", "sensors"] and parts[3] == "history":
                return self._history(parts[2], query)
            return self._error(404, "NotFoundError")

    def _sensors(self, query: dict[str, str], members: Sequence[int] | None) -> tuple:
        fields = [f for f in query.get("fields", "").split(",") if f]
        if not set(fields) <= {"latitude", "longitude"}:
            return self._error(400, "InvalidFieldValueError")
        chosen = sorted(self.positions) if members is None else list(members)
        if "show_only" in query:
            wanted = {int(s) for s in query["show_only"].split(",")}
            chosen = [s for s in chosen if s in wanted]
        if "nwlng" in query:
            w, n, e, s = (float(query[k]) for k in ("nwlng", "nwlat", "selng", "selat"))
            chosen = [
                x
                for x in chosen
                if w <= self.positions[x][1] <= e and s <= self.positions[x][0] <= n
            ]
        given = set(query.get("read_keys", "").split(","))
        chosen = [s for s in chosen if s not in self.read_keys or self.read_keys[s] in given]
        cost = charge(fields, len(chosen))
        if cost > self.points - self.charged:
            return self._error(402, "PaymentRequiredError")
        self.charged += cost
        names = ["sensor_index", *fields]
        data = [
            [s, *(self.positions[s][0 if f == "latitude" else 1] for f in fields)] for s in chosen
        ]
        return 200, {}, json.dumps({"fields": names, "data": data}).encode()

    def _history(self, sensor_text: str, query: dict[str, str]) -> tuple:
        n = self.history_requests
        self.history_requests += 1
        fault = self.faults.get(n)
        held = self.hold_after is not None and self.answered >= self.hold_after
        if fault is None and held and not self.released.is_set():
            fault = ("status", 503, {"Retry-After": "0"})
        if fault is not None:
            if fault[0] == "status":
                return fault[1], dict(fault[2]) if len(fault) > 2 else {}, b'{"error":"x"}'
            return 200, {}, bytes(fault[1])
        if not sensor_text.isdigit() or int(sensor_text) not in self.rows:
            return self._error(404, "NotFoundError")
        sensor = int(sensor_text)
        if sensor in self.read_keys and query.get("read_key") != self.read_keys[sensor]:
            return self._error(403, "InvalidReadKeyError")
        try:
            start, end = _time(query["start_timestamp"]), _time(query.get("end_timestamp", ""))
            average = int(query.get("average", "10"))
        except (KeyError, ValueError):
            return self._error(400, "InvalidParameterValueError")
        if average not in SPAN_DAYS:
            return self._error(400, "InvalidAverageError")
        if end <= start or end - start > SPAN_DAYS[average] * DAY:
            return self._error(400, "InvalidTimestampSpanError")
        fields = [f for f in query.get("fields", "").split(",") if f]
        if not fields or not set(fields) <= KNOWN:
            return self._error(400, "InvalidFieldValueError")
        chosen = [r for r in self.rows[sensor] if start <= r["time_stamp"] < end]
        cost = charge(fields, len(chosen))
        if cost > self.points - self.charged:
            return self._error(402, "PaymentRequiredError")
        self.charged += cost
        self.answered += 1
        data = [[r["time_stamp"], *(r.get(f) for f in fields)] for r in chosen]
        random.Random(sensor * 7919 + start).shuffle(data)
        body = {
            "api_version": "fake",
            "sensor_index": sensor,
            "start_timestamp": start,
            "end_timestamp": end,
            "average": average,
            "fields": ["time_stamp", *fields],
            "data": data,
        }
        return 200, {}, json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, headers, body = server.answer(
                    url.path, query, self.headers.get("X-API-Key")
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
