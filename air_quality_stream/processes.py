"""Start a run's Bytewax processes and relay their results, whole lines only, to stdout.

Each process writes its results into its own pipe (`engine.route_streams`); a thread per pipe
copies complete lines to this command's stdout under one lock, so lines of several processes
never mix, and nothing but results ever reaches stdout. Their stderr is this command's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

import air_quality_stream


def free_ports(n: int) -> list[int]:
    """`n` TCP ports free on 127.0.0.1 now (for the processes to talk to each other)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _relay(pipe: BinaryIO, out: BinaryIO, lock: threading.Lock) -> None:
    """Copy whole lines from `pipe` to `out` until the pipe closes."""
    with pipe:
        for line in pipe:
            if not line.endswith(b"\n"):
                line += b"\n"
            with lock:
                out.write(line)
                out.flush()


def _wait(children: list[subprocess.Popen]) -> list[int]:
    """Every child's exit code; once one fails, the others (left waiting for it) are stopped."""
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            return codes  # type: ignore[return-value]
        if any(code for code in codes):
            for child, code in zip(children, codes, strict=True):
                if code is None:
                    child.terminate()
            return [child.wait() for child in children]
        with contextlib.suppress(subprocess.TimeoutExpired):
            children[codes.index(None)].wait(timeout=0.2)


def run_processes(spec: dict[str, Any], processes: int) -> int:
    """Run `processes` engine processes of `spec` (workers each); the worst exit code."""
    addresses = None
    if processes > 1:
        addresses = [f"127.0.0.1:{port}" for port in free_ports(processes)]
    package_root = str(Path(air_quality_stream.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env[air_quality_stream.HOME_ENV] = str(air_quality_stream.checkout())
    if spec.get("log_level") != "debug":
        env["RUST_BACKTRACE"] = "0"  # a failed run's Python traceback says it; Rust's adds noise
    out, lock = sys.stdout.buffer, threading.Lock()
    sys.stdout.flush()
    children, relays = [], []
    for process_id in range(processes):
        read_end, write_end = os.pipe()
        child_spec = {**spec, "process_id": process_id, "addresses": addresses}
        child_spec["results_fd"] = write_end
        child = subprocess.Popen(
            [sys.executable, "-m", "air_quality_stream.engine", json.dumps(child_spec)],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        os.close(write_end)
        relay = threading.Thread(
            target=_relay, args=(os.fdopen(read_end, "rb"), out, lock), daemon=True
        )
        relay.start()
        children.append(child)
        relays.append(relay)
    try:
        codes = _wait(children)
    except KeyboardInterrupt:
        for child in children:
            child.send_signal(signal.SIGINT)
        codes = [child.wait() for child in children]
        codes.append(130)
    for relay in relays:
        relay.join()
    return max(codes, key=lambda code: (code != 0, abs(code)))
