"""A real PostgreSQL server for the tests: Debian's `postgresql`, a fresh cluster in a tmp dir,
127.0.0.1 and a free port only, time zone UTC; stopped and removed when the tests end.

`initdb` refuses to run as root, so as root the server runs as the `postgres` user. Every test
gets a database of its own (`create_database`), so tests never see each other's tables.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg2

ROLE = "fulfillment"
PASSWORD = "fulfillment-test"


def _bin_dir() -> Path:
    """Where Debian puts the server binaries (not on PATH): /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError(
        "PostgreSQL is not installed: run `apt-get install postgresql` (scripts/test.sh does)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One throw-away cluster; use as a context manager."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="fulfillment-postgres-"))
        self.data = self.root / "data"
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0

    def _run(self, *argv: str) -> None:
        command = [str(_bin_dir() / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["su", "postgres", "-c", subprocess.list2cmdline(command)]
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def __enter__(self) -> PostgresServer:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        try:
            self._run(
                "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
            )
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c timezone=UTC "
                "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            )
            log = self.root / "server.log"
            self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start")
        except subprocess.CalledProcessError as error:
            self.__exit__(None, None, None)
            raise RuntimeError(
                f"PostgreSQL did not start: {error.stderr or error.stdout}"
            ) from None
        self.admin(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        return self

    def __exit__(self, *exc: object) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str) -> None:
        """Runs one statement as the superuser, outside a transaction (CREATE DATABASE)."""
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self, time_zone: str = "UTC") -> str:
        """A new, empty database with this session time zone; returns its DSN."""
        name = f"test_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        self.admin(f"ALTER DATABASE {name} SET timezone TO '{time_zone}'")
        return self.dsn(name)


if __name__ == "__main__":
    with PostgresServer() as server:
        print(server.create_database())
