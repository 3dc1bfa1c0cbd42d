"""The live view's web application (Starlette): the page, its assets, and the JSON endpoints the
page polls and that scripts can call.

- `GET /api/sensors`: every sensor's newest reading, alert kinds and offline state (at most
  one refresh interval old: `computed` says when).
- `GET /api/incidents?limit=200`: the open incidents, newest first.
- `GET /api/sensors/{sensor}?start=&end=&points=1000`: a sensor's story over a span.
- `GET /api/health?minutes=60`: the run's per-minute counts, dead letters, offline sensors.
- `GET /api/config`: how the page polls and whether it draws map tiles.

A bad parameter is a 400 with `{"error": ...}`; with a token, every `/api/` call needs it
(`Authorization: Bearer TOKEN`, or `?token=TOKEN`). Files are served from `static/` only.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from viewer.queries import BadRequest, Store, parse_time

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("air_quality.viewer")


class JSON(Response):
    """A JSON response (orjson), never cached."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def __init__(self, content: Any, status_code: int = 200):
        super().__init__(content, status_code, headers={"Cache-Control": "no-store"})


class Cached:
    """A value that requests get at once, recomputed in the background when it is older than
    `max_age` seconds (stale while it revalidates): the map of every sensor costs one query
    per refresh interval, whatever the number of pages open, and no page waits for it but the
    first after the server starts."""

    def __init__(self, compute: Callable[[], dict[str, Any]], max_age: float):
        self.compute = compute
        self.max_age = max_age
        self.value: dict[str, Any] | None = None
        self.at = 0.0
        self.refreshing = False
        self._lock = threading.Lock()
        self._first = threading.Lock()

    def get(self) -> dict[str, Any]:
        if self.value is None:
            with self._first:  # one request computes it; the others wait for it
                if self.value is None:
                    self._store(self.compute())
            return self.value
        with self._lock:
            start = time.monotonic() - self.at > self.max_age and not self.refreshing
            if start:
                self.refreshing = True
        if start:
            threading.Thread(target=self._refresh, daemon=True).start()
        return self.value

    def _store(self, value: dict[str, Any]) -> None:
        self.value = {**value, "computed": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.at = time.monotonic()

    def _refresh(self) -> None:
        try:
            self._store(self.compute())
        except Exception:  # the last value stays; the next request tries again
            log.exception("could not refresh the sensors")
        finally:
            self.refreshing = False


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or `BadRequest`."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name}: {text!r} is not an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: {value} is not between {low} and {high}")
    return value


def _time(request: Request, name: str):
    text = request.query_params.get(name)
    return None if text in (None, "") else parse_time(text, name)


def _answer(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
    """A sync endpoint returning data as JSON; a bad parameter is 400, an unknown sensor 404."""

    def endpoint(request: Request) -> Response:
        try:
            return JSON(handler(request))
        except BadRequest as exc:
            return JSON({"error": str(exc)}, 400)
        except LookupError as exc:
            return JSON({"error": str(exc.args[0] if exc.args else exc)}, 404)

    return endpoint


class TokenGate(BaseHTTPMiddleware):
    """Every `/api/` request carries the token (header or query), or is refused with 401."""

    def __init__(self, app: Any, token: str):
        super().__init__(app)
        self.token = token.encode()

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/api/"):
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            given = given or request.query_params.get("token", "")
            if not hmac.compare_digest(given.encode(), self.token):
                return JSON({"error": "a token is needed (Authorization: Bearer TOKEN)"}, 401)
        return await call_next(request)


class Headers(BaseHTTPMiddleware):
    """The page loads nothing from elsewhere (map tiles from their server only, when asked)."""

    def __init__(self, app: Any, tiles: str | None):
        super().__init__(app)
        images = "'self' data:"
        if tiles:
            origin = "/".join(tiles.split("/")[:3])
            images += f" {origin}"
        self.policy = (
            f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
        )

    async def dispatch(self, request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = self.policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response


def create_app(
    store: Store, *, token: str | None = None, poll: float = 5.0, tiles: str | None = None
) -> Starlette:
    """The application over `store`; `poll`: seconds between the page's refreshes; `tiles`: a
    tile URL template (`https://.../{z}/{x}/{y}.png`) drawn under the map, or None (offline)."""

    map_data = Cached(store.sensors, max_age=poll)

    def sensors(_request: Request) -> Any:
        return map_data.get()

    def incidents(request: Request) -> Any:
        return store.incidents(limit=_int(request, "limit", 200, 1, 5000))

    def story(request: Request) -> Any:
        text = request.path_params["sensor"]
        try:
            sensor = int(text)
        except ValueError:
            raise BadRequest(f"sensor: {text!r} is not a sensor index") from None
        if not 0 <= sensor < 2**63:
            raise BadRequest(f"sensor: {sensor} is out of range")
        return store.story(
            sensor,
            start=_time(request, "start"),
            end=_time(request, "end"),
            points=_int(request, "points", 1000, 2, 5000),
        )

    def health(request: Request) -> Any:
        return store.health(_int(request, "minutes", 60, 1, 10080))

    def config(_request: Request) -> Any:
        return {"poll": poll, "tiles": tiles, "database": store.where}

    def page(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    middleware = [Middleware(Headers, tiles=tiles)]
    if token:
        middleware.append(Middleware(TokenGate, token=token))
    routes = [
        Route("/", page),
        Route("/api/sensors", _answer(sensors)),
        Route("/api/sensors/{sensor}", _answer(story)),
        Route("/api/incidents", _answer(incidents)),
        Route("/api/health", _answer(health)),
        Route("/api/config", _answer(config)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # the map's first query starts with the server, not with the first page
        threading.Thread(target=map_data.get, daemon=True).start()
        yield

    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
