"""A real, throw-away PostgreSQL server for tests and benchmarks: `initdb` in a temporary folder,
`pg_ctl start` on a free loopback port, `pg_ctl stop` and the folder removed at the end.

The server binaries are looked up on PATH (e.g. /usr/local/bin) and under Debian's
/usr/lib/postgresql/<version>/bin (`.ci/run` installs Debian's `postgresql` when neither has them).
PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user (which
Debian's package creates) or, failing that, to `nobody`. TCP connections need a password
(scram-sha-256), so a wrong one is refused as it would be in production.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "aqs"
PASSWORD = "aqs-test-password"


def server_bin() -> Path | None:
    """The folder holding `initdb`, `pg_ctl` and `postgres`, or None when no server is installed."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3])
    )
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _owner() -> pwd.struct_passwd | None:
    """The OS user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """A running server; `url` (password included) connects as the superuser `aqs`.

    >>> PostgresServer.__name__
    'PostgresServer'
    """

    def __init__(self, bin_dir: Path, durable: bool = False):
        self.bin = bin_dir
        self.durable = durable  # fsync on, as in production (benchmarks); off for tests
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="aqs-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.owner = _owner()
        self.url = self.url_for()

    def url_for(self, database: str = "postgres", password: str = PASSWORD) -> str:
        """The URL of `database` on this server, as `aqs` with `password`."""
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.owner is not None:
            command = ["runuser", "-u", self.owner.pw_name, "--", *command]
        return subprocess.run(
            command, check=check, capture_output=True, text=True, timeout=120, cwd=self.root
        )

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.owner is not None:
            os.chown(self.root, self.owner.pw_uid, self.owner.pw_gid)
            os.chown(pwfile, self.owner.pw_uid, self.owner.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                f"fsync = {'on' if self.durable else 'off'}\n"
                "max_connections = 50\nshared_buffers = 32MB\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`mode="immediate"`: as if it crashed)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def __enter__(self) -> PostgresServer:
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
