"""The configuration error: what any layer raises when a run cannot start (a bad option, an
unreadable header), before any data is read; the command prints it as one line."""

from __future__ import annotations

from core.redaction import redact


class ConfigError(ValueError):
    """A configuration that cannot run: one line naming the table, the key and what is wrong
    (with any credential in it masked: a value quoted back may be a database URL)."""

    def __init__(self, message: str):
        super().__init__(redact(" ".join(str(message).split())))
