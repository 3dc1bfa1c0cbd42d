"""`air-quality`: the command line. Each subcommand is a module of `commands/`.

Streams: results (anomalies, or what a subcommand makes) go to stdout and nothing else does;
logs, with their level, go to stderr (`--log-level`), as do progress lines and the end-of-run
summary. A configuration error is one line on stderr and exit code 1 (`CONFIG_ERROR`), as
`python -m config` gives.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from air_quality_stream import CheckoutNotFound, checkout
from air_quality_stream.commands import RESERVED, commands

PROG = "air-quality"
#: Exit code of a configuration error (the same as `python -m config`'s).
CONFIG_ERROR = 1
LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, prefix: str = "") -> None:
    """Log records of the project's `air_quality` loggers at `level` and above to stderr, one
    line each with time, level and logger (`prefix` names the process of a multi-process run)."""
    logger = logging.getLogger("air_quality")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(prefix + LOG_FORMAT, "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def parser() -> argparse.ArgumentParser:
    """The command's parser: global options, then one subparser per subcommand module."""
    found = commands()
    reserved = "".join(
        f" ({name}: reserved for {what}.)" for name, what in RESERVED.items() if name not in found
    )
    main = argparse.ArgumentParser(
        prog=PROG,
        description="Real-time cleaning and anomaly detection for PurpleAir air-quality streams.",
        epilog=f"`{PROG} COMMAND --help` explains each command.{reserved} "
        "Results go to stdout, logs, progress and the summary to stderr.",
    )
    main.add_argument(
        "--log-level", choices=LEVELS, default="info", help="least level logged (default info)"
    )
    sub = main.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in found.items():
        command = sub.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            add_help=module_help(module),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if module_help(module):  # also after the command: `air-quality run --log-level debug`
            command.add_argument(
                "--log-level", choices=LEVELS, default=argparse.SUPPRESS, help="as above"
            )
        module.add_arguments(command)
        command.set_defaults(handler=module.run, pass_on=not module_help(module))
    return main


def module_help(module: object) -> bool:
    """Whether argparse adds `--help` (a command that hands its arguments on does not)."""
    return getattr(module, "ADD_HELP", True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, set up logging, run the subcommand; its exit code."""
    try:
        checkout()
    except CheckoutNotFound as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return CONFIG_ERROR
    main_parser = parser()
    args, rest = main_parser.parse_known_args(argv)
    if getattr(args, "pass_on", False):
        args.arguments = rest  # a command that hands its arguments to a module's own parser
    elif rest:
        main_parser.error(f"unrecognized arguments: {' '.join(rest)}")
    setup_logging(args.log_level)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
