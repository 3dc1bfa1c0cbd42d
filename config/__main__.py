"""Print a configuration as annotated TOML.

    python -m config > flow.toml     # the defaults: every option, its default and what it does
    python -m config flow.toml       # that file as the flow will run it, or its error

The second checks a deployment's file without running it: it prints every option with the
value the file gives it (the default where it gives none), or the one-line error and exits 1.
"""

from __future__ import annotations

import argparse
import sys

from config.render import to_toml
from config.tables import resolve
from core.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="a TOML configuration to check and show resolved")
    args = parser.parse_args(argv)
    try:
        config = resolve(args.file) if args.file else None
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(to_toml(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
