"""A loopback stand-in for the PurpleAir API (`GET /v1/sensors`) that serves recorded polls.

Each answered request serves the next recorded poll (from the simulator), projected onto the
requested `fields` and limited to rows with `last_seen` > `modified_since`, as the real API does.
`faults` maps a request number (0-based, over all requests) to what to do instead:

- `("status", code, headers)`: answer `code` with those headers (429, 500, 401, 403, ...);
- `("hang", seconds)`: send nothing for that long (the client times out);
- `("truncate",)`: answer 200 with the first half of the next poll's JSON;
- `("repeat",)`: serve the previous poll again, whatever `modified_since` says;
- `("body", data)`: answer 200 with the bytes `data` (a bad body: any line of `tests/corpus.py`);
- `("short",)`: send half of the next poll's JSON under a Content-Length of all of it, then close;
- `("gzip",)`: answer 200 with `Content-Encoding: gzip` and a body that is not gzip.

A request whose `modified_since` is older than the last poll served replays the recorded polls
after that stamp, as the real API answers with what changed since it: a flow resumed from a
snapshot gets the polls it had not yet snapshotted.

With `hold_after=N`, once N polls are served the server answers 503 (`Retry-After: 0`) until
`release()` is called: a test can look at a running flow at a known point.

A faulted request does not advance the recorded polls: the next good one serves what it missed.
After the last poll, the server answers with no rows (nothing changed). Every request is
recorded (path, query, API key) for the tests to check. Use it as a context manager.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "test-key"


class FakePurpleAir:
    """Recorded polls served on 127.0.0.1 with injected faults."""

    def __init__(
        self,
        polls: Sequence[Mapping[str, Any]],
        faults: Mapping[int, tuple] | None = None,
        api_key: str = API_KEY,
        hold_after: int | None = None,
    ):
        self.polls = list(polls)
        self.faults = dict(faults or {})
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.served = 0  # recorded polls served so far
        self.hold_after = hold_after
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def release(self) -> None:
        """Stop holding: serve the remaining polls."""
        self.released.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakePurpleAir:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, path: str, query: dict[str, str], key: str | None) -> tuple:
        """(status, headers, body, hang_seconds) for one request; advances the recorded polls."""
        with self._lock:
            n = len(self.requests)
            self.requests.append({"path": path, "query": query, "key": key})
            if key != self.api_key:
                return 401, {}, b'{"error":"ApiKeyInvalidError"}', 0.0
            if path != "/v1/sensors":
                return 404, {}, b'{"error":"NotFoundError"}', 0.0
            since = query.get("modified_since")
            if since is not None:
                if not since.isdigit():
                    return 400, {}, b'{"error":"InvalidParameterValueError"}', 0.0
                after = [i for i, p in enumerate(self.polls) if p["data_time_stamp"] > int(since)]
                self.served = min(self.served, after[0] if after else len(self.polls))
            fault = self.faults.get(n, ("ok",))
            if self.served == self.hold_after and not self.released.is_set():
                fault = ("status", 503, {"Retry-After": "0"})
            kind = fault[0]
            if kind == "status":
                return fault[1], dict(fault[2]) if len(fault) > 2 else {}, b'{"error":"x"}', 0.0
            if kind == "hang":
                return 200, {}, b"", float(fault[1])
            if kind == "body":
                return 200, {}, bytes(fault[1]), 0.0
            if kind == "gzip":
                return 200, {"Content-Encoding": "gzip"}, b"not gzip at all", 0.0
            if kind == "repeat":
                poll = self.polls[max(self.served - 1, 0)]
                return 200, {}, self._body(poll, query.get("fields"), None), 0.0
            body = self._body(self._current(), query.get("fields"), query.get("modified_since"))
            if kind == "truncate":
                return 200, {}, body[: len(body) // 2], 0.0
            if kind == "short":
                return 200, {"Content-Length": str(len(body))}, body[: len(body) // 2], 0.0
            self.served = min(self.served + 1, len(self.polls))
            return 200, {}, body, 0.0

    def _current(self) -> Mapping[str, Any]:
        if self.served < len(self.polls):
            return self.polls[self.served]
        last = self.polls[-1]
        return {**last, "data": []}

    @staticmethod
    def _body(poll: Mapping[str, Any], fields: str | None, since: str | None) -> bytes:
        names = list(poll["fields"])
        wanted = ["sensor_index", *(f for f in (fields or "").split(",") if f and f in names)]
        positions = [names.index(f) for f in wanted]
        seen = names.index("last_seen") if "last_seen" in names else None
        rows = [
            [row[i] for i in positions]
            for row in poll["data"]
            if since is None or seen is None or row[seen] > int(since)
        ]
        out = {k: v for k, v in poll.items() if k not in ("fields", "data")}
        out.update(fields=wanted, data=rows)
        return json.dumps(out, separators=(",", ":")).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, headers, body, hang = server.answer(
                    url.path, query, self.headers.get("X-API-Key")
                )
                if hang:
                    time.sleep(hang)  # the client has given up by now
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler
