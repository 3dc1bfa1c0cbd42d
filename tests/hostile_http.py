"""A hostile HTTP server on 127.0.0.1 for the limits of `sources/http.py`: it writes raw bytes.

`routes` maps a path to a function `(query, body) -> iterable of (bytes, pause seconds)`: the
server sends each piece, then pauses, so a test can trickle headers or a body a byte at a time
(slowloris), send a gzip bomb, an endless body or a redirect. Every request is recorded
(method, path, headers, body). Every loop is bounded: a request head or body is read within
2 s, and a script stops when the client goes away or the server is closed. A path without a
route answers 404. Use it as a context manager.
"""

from __future__ import annotations

import gzip
import socketserver
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

Script = Iterable[tuple[bytes, float]]
Route = Callable[[dict[str, str], bytes], Script]

MiB = 1 << 20


def head(status: int, headers: Mapping[str, str] | None = None) -> bytes:
    """A response's status line and headers (Connection: close)."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode()


def answer(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Script:
    """A whole answer at once, with its Content-Length."""
    yield head(status, {"Content-Length": str(len(body)), **(headers or {})}) + body, 0.0


def trickle(data: bytes, every: float) -> Script:
    """`data` one byte at a time, `every` seconds apart."""
    for i in range(len(data)):
        yield data[i : i + 1], every


@cache
def gzip_bomb(decoded: int = 64 * MiB) -> bytes:
    """`decoded` zero bytes, gzipped (about 1,000 times smaller)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(MiB)
    return b"".join(packer.compress(zeros) for _ in range(decoded // MiB)) + packer.flush()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body)


class Hostile:
    """Scripted raw answers on an ephemeral port of 127.0.0.1."""

    def __init__(self, routes: Mapping[str, Route]):
        self.routes = dict(routes)
        self.requests: list[dict[str, Any]] = []
        self.closed = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve(self.request)

        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._tcp.daemon_threads = True
        self._thread = threading.Thread(target=self._tcp.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._tcp.server_address[1]}"

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self._tcp.shutdown()
        self._tcp.server_close()

    def _serve(self, sock: Any) -> None:
        sock.settimeout(2.0)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                more = sock.recv(4096)
                if not more:
                    return
                data += more
            top, _, body = data.partition(b"\r\n\r\n")
            line, *lines = top.decode("latin-1").split("\r\n")
            method, target, _ = line.split(" ", 2)
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)
            }
            length = int(headers.get("content-length", "0"))
            while len(body) < length:
                more = sock.recv(65536)
                if not more:
                    return
                body += more
        except (OSError, ValueError):
            return
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.requests.append(
            {"method": method, "path": url.path, "query": query, "headers": headers, "body": body}
        )
        route = self.routes.get(url.path)
        script = route(query, body) if route else answer(404, b"{}")
        for piece, pause in script:
            if self.closed.is_set():
                return
            try:
                sock.sendall(piece)
            except OSError:
                return  # the client went away
            if pause and self.closed.wait(pause):
                return
