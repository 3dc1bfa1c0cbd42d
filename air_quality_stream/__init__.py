"""The project's one command, `air-quality`: run, back-fill, configure, report, evaluate.

This is the only package that `pip install .` puts into site-packages. The project's own
folders (`dataflows`, `sources`, `sinks`, `data`, ...) have generic names that would clash with
other projects' in a shared site-packages, so they stay in the checkout: the command finds the
checkout (`checkout()`) and puts it first on its own `sys.path`, in its own process only. The
installed package is only this launcher: on import it takes its modules (`cli`, `commands`,
...) from the checkout's copy, so a `git pull` needs no reinstall.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The environment variable that names the checkout, overriding what the install recorded.
HOME_ENV = "AIR_QUALITY_HOME"
#: A file that only the project's checkout has.
MARKER = Path("dataflows") / "air_quality.py"


class CheckoutNotFound(RuntimeError):
    """No checkout of the project where the command looked."""


def _recorded() -> str | None:
    """The checkout that `pip install .` was run from (written into the built package)."""
    try:
        from air_quality_stream._checkout import CHECKOUT  # type: ignore[import-not-found]
    except ImportError:
        return None
    return CHECKOUT


def checkout() -> Path:
    """The project's checkout: `$AIR_QUALITY_HOME`, else the folder this package sits in (run
    from the checkout), else the one the install recorded; put first on `sys.path`."""
    candidates = [os.environ.get(HOME_ENV), str(Path(__file__).resolve().parent.parent)]
    candidates.append(_recorded())
    for candidate in candidates:
        if candidate and (Path(candidate) / MARKER).is_file():
            home = str(Path(candidate).resolve())
            if home not in sys.path:
                sys.path.insert(0, home)
            return Path(home)
    raise CheckoutNotFound(
        f"cannot find the project's checkout (tried {', '.join(c for c in candidates if c)}); "
        f"set {HOME_ENV} to it"
    )


def _use_checkout() -> None:
    """Take this package's modules from the checkout (when found) rather than the installed
    copy; a missing checkout is reported by `cli.main`."""
    try:
        home = checkout()
    except CheckoutNotFound:
        return
    here = home / "air_quality_stream"
    if here.is_dir():
        __path__[:] = [str(here)]


_use_checkout()
