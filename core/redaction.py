"""Credentials out of every message: the one function (`redact`) that logs, errors and the
configuration printer pass text through before anyone sees it.

A URL's password is wherever a driver might read it: after the user name (the user may be
empty, the password may hold an unencoded `@`, `/` or a bad %-escape), or in a query parameter
(`?password=...`, `sslpassword=`, `api_key=`, `token=`, ...). A driver's own message can repeat
the password, or a piece of it that it took for a host name, without the URL around it: so
`redact` also takes the URLs the text may be about, and removes every piece of their secrets.

>>> redact("postgresql://:PW@db.example/aq")
'postgresql://:***@db.example/aq'
>>> redact("postgresql://me:p@ss/w%zz@db.example:5432/aq?sslmode=require&password=x")
'postgresql://me:***@db.example:5432/aq?sslmode=require&password=***'
>>> url = "postgresql://me:PW@2secret@127.0.0.1/aq"
>>> redact("failed to resolve host '2secret@127.0.0.1'", url)
"failed to resolve host '***@127.0.0.1'"
>>> redact("host=db user=me password='a b' dbname=aq")
'host=db user=me password=*** dbname=aq'
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
#: Parameter names whose values are secrets (in a URL's query or a `key=value` string).
SECRET_NAMES = r"[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|key|auth)"
_PARAM = re.compile(
    rf"((?:^|(?<=[\s?&;,]))\b{SECRET_NAMES}\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^&#;,\s]*)",
    re.IGNORECASE,
)
#: A URL with a user part: scheme, `//`, then up to the end of the word.
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s'\"<>]*)")
#: What a driver may split a password with an unencoded delimiter at.
_DELIMITERS = re.compile(r"[@/:?#&=,;\s]+")


def _userinfo(rest: str) -> tuple[str, str, str] | None:
    """A URL's part after `scheme://` as (user, password, host and the rest), split at the
    first `:` and the last `@` (a password may hold an unencoded `@`); None when no password."""
    at = rest.rfind("@")
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    if not colon:
        return None
    return user, password, rest[at + 1 :]


def _mask_url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    parts = _userinfo(rest)
    if parts is not None:
        user, _password, after = parts
        rest = f"{user}:{MASK}@{after}"
    return scheme + rest


def secrets_of(url: str) -> set[str]:
    """Every text that would give away a secret of `url`: its password and each secret
    parameter's value, raw, %-decoded, and each piece of them between delimiters."""
    found: set[str] = set()
    tail = url.split("://", 1)[-1]
    parts = _userinfo(tail)
    if parts is not None and parts[1]:
        found.add(parts[1])
    for match in _PARAM.finditer(url):
        value = match.group(2).strip("'\"")
        if value:
            found.add(value)
    for secret in list(found):
        found.add(unquote(secret))
        found.update(piece for piece in _DELIMITERS.split(secret) if piece)
    return found


def redact(text: str, *urls: str) -> str:
    """`text` with every credential masked: the password of each URL in it, each secret
    parameter (`password=...`), and every piece of the secrets of `urls` (the URLs the text
    may be about: a driver's message repeats parts of them bare)."""
    secrets: set[str] = set()
    for url in urls:
        secrets |= secrets_of(url)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL.sub(_mask_url, text)
    return _PARAM.sub(lambda m: m.group(1) + MASK, text)
