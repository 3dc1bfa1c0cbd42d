"""Bounded HTTP: one request with a total deadline, byte caps and same-origin redirects only.

`requests` alone bounds neither time nor size: its read timeout is per chunk (a server sending a
byte a second holds a request forever), and it decompresses a gzip answer whole (a 4 MB bomb
unpacks into 4 GiB). `fetch` is the one way the project talks HTTP (the live poller, the URL
source, the webhook sink), and it holds to `HttpLimits`:

- **deadline**: a watchdog shuts the socket down when `deadline_s` has passed since the request
  began, whatever the server is doing (trickling headers or body, redirecting);
- **bytes**: the body is read as it comes, counting the bytes on the wire (`max_bytes`) and,
  decoded one bounded piece at a time (gzip or deflate, never more than 1 MiB ahead),
  the decoded bytes (`max_decoded_bytes`); a `Content-Length` above the cap is refused unread;
- **redirects**: followed only to the same origin (scheme, host and port), so the headers (an
  API key) never go to another server; a redirect elsewhere is an `HttpLimitError`.

Anything over a limit raises `HttpLimitError`, whose `kind` says which limit and whose message is
one short line. Failures on the way (no connection, a connection reset, a body cut short) raise
what `requests` raises (`requests.ConnectionError`, `requests.Timeout`,
`requests.exceptions.ChunkedEncodingError`). Not bounded: name resolution (`getaddrinfo` takes
no timeout; a local resolver's own timeouts apply).

>>> HttpLimits(deadline_s=0)
Traceback (most recent call last):
...
ValueError: deadline_s must be a finite number above 0, got 0
>>> same_origin("http://a.example/x", "HTTP://A.example:80/y"), same_origin("http://a/", "https://a/")
(True, False)
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

MiB = 1 << 20
#: Bytes read from the socket at a time, and the most one decoding step may produce.
CHUNK = 64 * 1024
DECODE_STEP = MiB
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}

#: `HttpLimitError.kind`: which limit an answer broke.
DEADLINE = "deadline"
SIZE = "size"
DECODED_SIZE = "decoded-size"
REDIRECT = "redirect"
ENCODING = "encoding"


class HttpLimitError(Exception):
    """An answer refused because it broke one of the `HttpLimits` (or cannot be decoded)."""

    def __init__(self, reason: str, kind: str = SIZE):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def _positive(name: str, value: float, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{name} must be a whole number of bytes, got {value!r}")


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one request may cost: seconds in all, seconds of silence, bytes on the wire and
    decoded, and same-origin redirects followed."""

    deadline_s: float = 60.0  # the whole request: connect, send, headers, body, redirects
    connect_s: float = 5.0  # opening a connection (no more than the deadline)
    read_s: float = 30.0  # silence between two reads (no more than the deadline)
    max_bytes: int = 32 * MiB  # the body as sent (compressed or not)
    max_decoded_bytes: int = 64 * MiB  # the body after gzip/deflate decoding
    max_redirects: int = 5  # same-origin redirects followed in one request

    def __post_init__(self) -> None:
        for name in ("deadline_s", "connect_s", "read_s"):
            _positive(name, getattr(self, name))
        for name in ("max_bytes", "max_decoded_bytes"):
            _positive(name, getattr(self, name), integer=True)
        if isinstance(self.max_redirects, bool) or not isinstance(self.max_redirects, int):
            raise ValueError(f"max_redirects must be a whole number, got {self.max_redirects!r}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, got {self.max_redirects}")

    def timeout(self) -> tuple[float, float]:
        """`requests`' (connect, read) timeout, neither above the deadline."""
        return (min(self.connect_s, self.deadline_s), min(self.read_s, self.deadline_s))


@dataclass(frozen=True, slots=True)
class HttpResult:
    """A complete answer: its status, headers, decoded body and the URL that gave it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def snippet(self, size: int = 200) -> str:
        """The start of the body as text, for a one-line message."""
        return repr(self.body[:size].decode("utf-8", "replace"))


def where(url: str) -> str:
    """The URL without user, password, query or fragment: what messages may show of it.

    >>> where("https://me:pw@api.example:8443/v1/sensors?api_key=k#x")
    'https://api.example:8443/v1/sensors'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, lower-case, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def same_origin(a: str, b: str) -> bool:
    """True when both URLs have the same scheme, host and port."""
    return origin(a) == origin(b)


# --- the deadline: a watchdog that shuts the request's socket down -------------------------


class _Deadline:
    """Shuts down every socket the request uses once `seconds` have passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()
        _current.deadline = None

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shutdown(sock)
            elif not any(s is sock for s in self._sockets):
                self._sockets.append(sock)

    def check(self) -> None:
        if self.expired or time.monotonic() > self.end:
            self.expired = True
            raise self.error()

    def error(self) -> HttpLimitError:
        return HttpLimitError(f"no complete answer within {self.seconds:g} s", DEADLINE)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # wakes a thread blocked on it in recv or send
        sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _Watched:
    """A urllib3 connection that puts its socket under the current request's deadline."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _watch(self.sock)

    def getresponse(self) -> Any:
        _watch(self.sock)
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


class BoundedAdapter(HTTPAdapter):
    """A `requests` adapter whose connections live under `fetch`'s deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def bounded_session(headers: Mapping[str, str] | None = None) -> requests.Session:
    """A session for `fetch` (any session works: `fetch` mounts its adapter on it)."""
    session = requests.Session()
    _mount(session)
    session.headers.update(headers or {})
    return session


def _mount(session: requests.Session) -> None:
    for prefix in ("http://", "https://"):
        if not isinstance(session.adapters.get(prefix), BoundedAdapter):
            session.mount(prefix, BoundedAdapter())


# --- bytes: counted on the wire and decoded one bounded step at a time ----------------------


class _Decoder:
    """Decodes a gzip or deflate body piece by piece, never producing more than `cap` bytes."""

    def __init__(self, coding: str, cap: int):
        self.coding = coding
        self.cap = cap
        self.total = 0
        self._raw_deflate = False
        self._started = False
        self._z = self._new()

    def _new(self) -> Any:
        if self.coding == "deflate":
            return zlib.decompressobj(-zlib.MAX_WBITS if self._raw_deflate else zlib.MAX_WBITS)
        return zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> list[bytes]:
        try:
            return self._feed(data)
        except zlib.error as exc:
            if self.coding == "deflate" and not self._started and not self._raw_deflate:
                self._raw_deflate = True  # servers that send raw deflate without zlib's header
                self._z = self._new()
                return self.feed(data)
            raise self._undecodable(exc) from None

    def _feed(self, data: bytes) -> list[bytes]:
        pieces = []
        while data:
            piece = self._z.decompress(data, DECODE_STEP)
            self._started = True
            self._count(piece, pieces)
            data = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:
                rest = self._z.unused_data
                if self.coding == "deflate" or not rest.startswith(b"\x1f\x8b"):
                    raise HttpLimitError(f"bytes after the end of the {self.coding} body", ENCODING)
                self._z = self._new()  # the next member of a multi-member gzip body
                data = rest + data
        return pieces

    def finish(self) -> list[bytes]:
        pieces: list[bytes] = []
        if not self._started:
            return pieces
        try:
            while piece := self._z.decompress(b"", DECODE_STEP):
                self._count(piece, pieces)
        except zlib.error as exc:
            raise self._undecodable(exc) from None
        if not self._z.eof:
            raise HttpLimitError(f"the {self.coding} body ends early", ENCODING)
        return pieces

    def _undecodable(self, exc: zlib.error) -> HttpLimitError:
        return HttpLimitError(f"the {self.coding} body does not decode: {exc}", ENCODING)

    def _count(self, piece: bytes, pieces: list[bytes]) -> None:
        self.total += len(piece)
        if self.total > self.cap:
            raise HttpLimitError(
                f"the body decodes to more than max_decoded_bytes={self.cap}", DECODED_SIZE
            )
        if piece:
            pieces.append(piece)


def _decoder(headers: Mapping[str, str], cap: int) -> _Decoder | None:
    codings = [c.strip().lower() for c in headers.get("Content-Encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
        return _Decoder("deflate" if codings[0] == "deflate" else "gzip", cap)
    raise HttpLimitError(f"unsupported Content-Encoding {', '.join(codings)!r}", ENCODING)


def _read_body(response: requests.Response, limits: HttpLimits, deadline: _Deadline) -> bytes:
    """The decoded body, read as it arrives, within the byte caps and the deadline."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise HttpLimitError(
            f"Content-Length {int(declared)} is over max_bytes={limits.max_bytes}", SIZE
        )
    decoder = _decoder(response.headers, limits.max_decoded_bytes)
    pieces: list[bytes] = []
    wire = 0
    try:
        for chunk in response.raw.stream(CHUNK, decode_content=False):
            deadline.check()
            wire += len(chunk)
            if wire > limits.max_bytes:
                raise HttpLimitError(f"the body is over max_bytes={limits.max_bytes}", SIZE)
            if decoder is None:
                if wire > limits.max_decoded_bytes:
                    raise HttpLimitError(
                        f"the body is over max_decoded_bytes={limits.max_decoded_bytes}",
                        DECODED_SIZE,
                    )
                pieces.append(chunk)
            else:
                pieces.extend(decoder.feed(chunk))
        deadline.check()
        if decoder is not None:
            pieces.extend(decoder.finish())
    except ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(str(exc)) from None
    except (ProtocolError, DecodeError) as exc:
        raise requests.exceptions.ChunkedEncodingError(str(exc)) from None
    return b"".join(pieces)


# --- one request --------------------------------------------------------------------------


def fetch(
    session: requests.Session,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    data: bytes | None = None,
    limits: HttpLimits,
    method: str = "GET",
) -> HttpResult:
    """Send one request and read its whole answer within `limits`.

    Same-origin redirects are followed (303, and 301/302 after a POST, become a GET without
    the body, as browsers do); a redirect to another origin raises `HttpLimitError`
    (kind `redirect`) without being followed. Any status is returned as it is: what a status
    means is the caller's business. `fetch` mounts `BoundedAdapter` on `session`.
    """
    _mount(session)
    start = url
    with _Deadline(limits.deadline_s) as deadline:
        try:
            for _ in range(limits.max_redirects + 1):
                response = session.request(
                    method,
                    url,
                    params=params,
                    headers=dict(headers or {}),
                    data=data,
                    timeout=limits.timeout(),
                    stream=True,
                    allow_redirects=False,
                )
                try:
                    location = response.headers.get("Location")
                    if response.status_code not in REDIRECTS or not location:
                        body = _read_body(response, limits, deadline)
                        return HttpResult(
                            response.status_code, response.headers, body, response.url
                        )
                finally:
                    response.close()
                target = urljoin(response.url, location)
                if not same_origin(start, target):
                    raise HttpLimitError(
                        f"HTTP {response.status_code} from {where(response.url)} to another "
                        f"origin, {where(target)}: not followed",
                        REDIRECT,
                    )
                if response.status_code == 303 or (
                    response.status_code in (301, 302) and method == "POST"
                ):
                    method, data = "GET", None
                url, params = target, None
            raise HttpLimitError(
                f"more than max_redirects={limits.max_redirects} redirects from {where(start)}",
                REDIRECT,
            )
        except HttpLimitError:
            raise
        except Exception as exc:
            if deadline.expired:
                raise deadline.error() from exc
            raise
