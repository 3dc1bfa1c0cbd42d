"""Read payload documents from a file or an http(s) URL: one JSON payload, or JSON lines of them.

A file whose first line is a whole JSON document is read as JSON lines (a recorded sequence of
polls); otherwise the whole file is one (possibly pretty-printed) payload. Lines are yielded
lazily with their origin (`name:line`) so dead letters can say where they came from.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import requests

from core.redaction import redact
from sources.http import HttpLimitError, HttpLimits, MiB, bounded_session, fetch, where
from sources.payload import PayloadError, decode_line
from sources.retry import cause

#: What fetching an http(s) source may cost by default: 5 minutes in all, 60 s of silence, and
#: 128 MiB (a recorded file of many polls; a bigger one is better read from a local file).
URL_LIMITS = HttpLimits(
    deadline_s=300.0, connect_s=5.0, read_s=60.0, max_bytes=128 * MiB, max_decoded_bytes=128 * MiB
)


class SourceError(RuntimeError):
    """A source location that cannot be read at all (missing file, unreachable URL, HTTP error);
    its message with any credential in it masked (`core.redaction`)."""

    def __init__(self, message: str):
        super().__init__(redact(message))


def skip_rest(file: BinaryIO, chunk: int) -> int:
    """Read on to the end of the current line, `chunk` bytes at a time, keeping nothing; return
    how many bytes that was: for a line too long to hold (a file without newlines, say)."""
    skipped = 0
    while (more := file.readline(chunk)) and not more.endswith(b"\n"):
        skipped += len(more)
    return skipped + len(more)


def is_url(location: str) -> bool:
    """True for http:// and https:// locations."""
    return location.startswith(("http://", "https://"))


def check_reachable(url: str, timeout: float = URL_LIMITS.connect_s) -> None:
    """Raise `SourceError` unless a TCP connection to the URL's host and port opens: found when
    the flow is built, as one line, rather than when its first partition runs. Sends nothing,
    so an API that charges per request is not charged.

    >>> check_reachable("http://127.0.0.1:9/polls.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sources.documents.SourceError: cannot reach http://127.0.0.1:9/polls.json: ...refused
    """
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except (OSError, ValueError) as exc:  # refused, timed out, unknown host; a bad port number
        raise SourceError(f"cannot reach {url}: {exc}") from None


def fetch_url(url: str, limits: HttpLimits = URL_LIMITS) -> bytes:
    """GET a URL within `limits` and return its body; raise `SourceError` saying what went
    wrong, in one line."""
    try:
        with bounded_session() as session:
            answer = fetch(session, url, limits=limits)
    except HttpLimitError as exc:
        raise SourceError(f"could not fetch {where(url)}: {exc.reason}") from None
    except requests.RequestException as exc:
        raise SourceError(f"could not fetch {where(url)}: {cause(exc)}") from None
    if answer.status != 200:
        raise SourceError(f"{where(url)} answered HTTP {answer.status}: {answer.snippet()}")
    return answer.body


def is_document(line: bytes) -> bool:
    """True when `line` is one whole JSON document (as `decode_line` reads JSON)."""
    try:
        decode_line(line)
    except PayloadError:
        return False
    return True


def split_documents(lines: Iterator[bytes], name: str) -> Iterator[tuple[str, bytes]]:
    """Yield `(origin, document)` pairs from the lines of one file or response body."""
    numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
    first = next(numbered, None)
    if first is None:
        return
    if is_document(first[1]):
        yield f"{name}:{first[0]}", first[1]
        for n, line in numbered:
            yield f"{name}:{n}", line
        return
    rest = list(numbered)
    whole = first[1] + b"".join(line for _, line in rest)
    if is_document(whole):
        yield name, whole
        return
    for n, line in [first, *rest]:
        yield f"{name}:{n}", line


def iter_documents(location: str, limits: HttpLimits = URL_LIMITS) -> Iterator[tuple[str, bytes]]:
    """Yield `(origin, document)` pairs from a file path or an http(s) URL (fetched within
    `limits`)."""
    if is_url(location):
        body = fetch_url(location, limits)
        yield from split_documents(iter(body.splitlines(keepends=True)), location)
        return
    path = Path(location)
    if not path.is_file():
        raise SourceError(f"no such file: {location}")
    with path.open("rb") as lines:
        yield from split_documents(iter(lines), path.name)
