"""Hand a subcommand's arguments to a module's own `main(argv)` (its parser, its `--help`)."""

from __future__ import annotations

import importlib
import sys

from air_quality_stream.cli import CONFIG_ERROR


def delegate(module: str, prog: str, argv: list[str]) -> int:
    """`module.main(argv)`, its usage lines naming `prog`; a configuration error as one line."""
    from config.options import say_configuration_error

    main = importlib.import_module(module).main
    name, sys.argv[0] = sys.argv[0], prog
    try:
        return main(argv) or 0
    except SystemExit as stop:  # argparse: --help, or a usage error
        return stop.code if isinstance(stop.code, int) else 0
    except Exception as error:
        if not say_configuration_error(error):
            raise
        return CONFIG_ERROR
    finally:
        sys.argv[0] = name
