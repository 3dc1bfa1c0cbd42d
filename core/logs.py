"""The `air_quality` loggers' one stderr handler, which sources, sinks and the command share."""

from __future__ import annotations

import logging
import sys


def ensure_stderr_handler(logger: logging.Logger) -> None:
    """Give the `air_quality` loggers an INFO handler on stderr unless one is configured (a
    level configured with it, as `air-quality --log-level` does, is left as it is)."""
    if not logger.hasHandlers() or logger.getEffectiveLevel() > logging.INFO:
        root = logging.getLogger("air_quality")
        if not root.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
            root.addHandler(handler)
            root.setLevel(logging.INFO)
