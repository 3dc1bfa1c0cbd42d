"""What must hold before a run starts, checked before the engine does: the source is there (a
file that exists, the PurpleAir API key set and accepted), every output can be written, every
database takes the credentials. A failure is a `ConfigError`: one line, exit code 1.

An outage is not a failure: an API or a database that does not answer now is logged as a
warning, and the run rides it out as it rides out any outage (retries with backoff).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from config.flow import FlowConfig, PurpleAirConfig
from core.errors import ConfigError
from sinks.database import database_url, redact
from sources.documents import is_url

log = logging.getLogger("air_quality.preflight")
#: Seconds the pre-flight requests wait (connect, read).
TIMEOUT = (5.0, 10.0)
#: PostgreSQL error classes that no retry fixes: bad credentials (28) or no such database.
REFUSED_SQLSTATES = ("28", "3D000")


def check(config: FlowConfig, *, source_file: bool = True) -> None:
    """Every check below; raises the first `ConfigError`. `source_file=False` skips the
    source (a back-fill checks its own history file)."""
    if source_file:
        check_source(config)
    check_outputs(config)


def check_source(config: FlowConfig) -> None:
    """A file source exists; the live API has a key and accepts it."""
    path = config.source.path
    if path is None or not isinstance(path, str | Path):
        return
    if path == "purpleair":
        check_api_key(config.source.purpleair)
    elif not is_url(str(path)) and not Path(path).is_file():
        raise ConfigError(f"[source] path: no such file: {path}")


def check_api_key(api: PurpleAirConfig) -> None:
    """The key is in its environment variable, and the API does not refuse it (401/403).
    `GET /keys` answers whether a key is valid and costs no sensor data."""
    key = os.environ.get(api.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"[source.purpleair] no API key: set {api.api_key_env} "
            "(a PurpleAir read key, from https://develop.purpleair.com)"
        )
    url = api.base_url.rstrip("/") + "/keys"
    try:
        answer = requests.get(url, headers={"X-API-Key": key}, timeout=TIMEOUT)
    except requests.RequestException as error:
        log.warning("PurpleAir API %s not reachable now (%s); the run retries", url, _short(error))
        return
    if answer.status_code in (401, 403):
        raise ConfigError(
            f"[source.purpleair] the API refused the key in {api.api_key_env} "
            f"({answer.status_code} from {urlsplit(url).netloc})"
        )


def _short(error: BaseException) -> str:
    """An exception as a short cause: its type, and its message cut to 80 characters."""
    text = str(error).split("\n")[0]
    return f"{type(error).__name__}: {text[:80]}{'...' if len(text) > 80 else ''}"


def output_targets(config: FlowConfig) -> dict[str, Any]:
    """Each output a run writes, by its option (`[outputs] anomalies`, ...), with its target."""
    outputs = config.outputs
    targets = {
        f"[outputs] {name}": getattr(outputs, name)
        for name in ("anomalies", "dead_letters", "readings", "events", "incidents")
    }
    if outputs.sample.size:
        targets["[outputs.sample] path"] = outputs.sample.path
    if outputs.webhook.url is not None:
        targets["[outputs.webhook] dead_letters"] = outputs.webhook.dead_letters
    return {where: target for where, target in targets.items() if isinstance(target, str | Path)}


def check_outputs(config: FlowConfig) -> None:
    """Every file output can be created or appended to; every database opens."""
    for where, target in output_targets(config).items():
        url = database_url(target)
        if url is None:
            check_writable(where, Path(target))
        elif url.startswith("sqlite:///"):
            check_writable(where, Path(url.removeprefix("sqlite:///")))
        else:
            check_postgres(where, url)


def check_writable(where: str, path: Path) -> None:
    """`path` can be appended to, or created (tried: a file made by the check is removed); a
    missing folder or a folder as the path is the configuration's own check (`OutputsConfig`)."""
    if str(path) == "-":
        return
    existed = path.exists()
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
    except OSError as error:
        raise ConfigError(f"{where}: {path} cannot be written ({error.strerror})") from None
    if not existed:
        path.unlink()


def check_postgres(where: str, url: str) -> None:
    """The database takes the credentials; one that does not answer now is an outage."""
    import psycopg  # here: only a PostgreSQL output needs it

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as error:
        state = getattr(error, "sqlstate", None) or ""
        text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        refused = state.startswith(REFUSED_SQLSTATES) or any(
            words in text
            for words in ("password authentication failed", "does not exist", "no password")
        )
        if refused:
            raise ConfigError(f"{where}: {redact(url)} refused the connection: {text}") from None
        log.warning("%s: %s not reachable now (%s); the run retries", where, redact(url), text)
