"""The live view's command line: `python -m viewer --db results.db [--host] [--port] [--token]`.

`add_arguments(parser)` and `main(args)` let another command (the front door's `serve`) offer
the same options; `run()` is this module's own command.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys

from viewer.queries import Store

TOKEN_ENV = "AQ_VIEW_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The live view's options, on `parser`."""
    parser.add_argument(
        "--db", required=True,
        help="the flow's database: a .db/.sqlite/.sqlite3 path, sqlite:///PATH or postgresql://...",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (8050)")
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"a token every /api/ call must carry (also ${TOKEN_ENV}); needed for a host "
        "other than the loopback",
    )
    parser.add_argument(
        "--poll", type=float, default=5.0, help="seconds between the page's refreshes (5)"
    )
    parser.add_argument(
        "--tiles",
        help="a map tile URL template, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(unset: no tiles, works offline)",
    )


def loopback(host: str) -> bool:
    """Whether `host` is only reachable from this machine.

    >>> loopback("127.0.0.1"), loopback("localhost"), loopback("::1"), loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line, or None."""
    if not 0 < args.port < 65536:
        return f"--port {args.port}: not a TCP port"
    if not loopback(args.host) and not args.token:
        return f"--host {args.host} is reachable from other machines: give --token too"
    if not 0.2 <= args.poll <= 3600:
        return f"--poll {args.poll}: between 0.2 and 3600 seconds"
    if args.tiles and not (args.tiles.startswith(("https://", "http://")) and "{z}" in args.tiles):
        return f"--tiles {args.tiles}: an http(s) URL template with {{z}}, {{x}} and {{y}}"
    return None


def main(args: argparse.Namespace) -> int:
    """Serve the live view until interrupted; a bad option or database is one line, exit 2."""
    problem = check(args)
    store = None
    if problem is None:
        try:
            store = Store(args.db)
            store.check()
        except Exception as exc:  # the database's own error, said once
            problem = f"--db: cannot read {args.db}: {type(exc).__name__}: {exc}"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    from viewer.app import create_app

    app = create_app(store, token=args.token, poll=args.poll, tiles=args.tiles)
    print(f"live view of {store.where} on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def run(argv: list[str] | None = None) -> int:
    """`python -m viewer ...`."""
    parser = argparse.ArgumentParser(prog="python -m viewer", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))
