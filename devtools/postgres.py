"""A throwaway PostgreSQL server for the tests and the benchmark harness (both use this
one): initdb into a temp dir, start on a free loopback port with fsync off, stop and
delete on exit.

initdb refuses to run as root, so as root the server runs as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg


def find_postgres_bin() -> Path:
    """The directory holding initdb and pg_ctl (Debian keeps them off PATH)."""
    explicit = os.environ.get("CONVEYOR_PG_BIN")
    if explicit:
        return Path(explicit)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found: install postgresql-15 "
            "(apt-get install postgresql-15) or set CONVEYOR_PG_BIN"
        )
    return candidates[0].parent


START_ATTEMPTS = 3


class PortTaken(RuntimeError):
    """The server could not bind its port: something else listens there."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, *, port: int | None = None, extra_settings: dict[str, str] | None = None):
        self.bin = find_postgres_bin()
        self.port = port or free_port()
        self.port_chosen = port is None
        self.root = Path(tempfile.mkdtemp(prefix="conveyor-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.as_postgres_user = os.geteuid() == 0
        self.settings = {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "shared_preload_libraries": "pg_stat_statements",
            **(extra_settings or {}),
        }

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True)

    def init(self) -> None:
        if self.as_postgres_user:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )

    def start(self) -> None:
        options = " ".join(f"-c {key}={value}" for key, value in self.settings.items())
        options += f" -p {self.port}"
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "start",
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            failed = PortTaken if "Address already in use" in log else RuntimeError
            raise failed(f"PostgreSQL did not start: {result.stderr}\n{log}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop("immediate")
        time.sleep(down_seconds)
        self.start()

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresServer:
        try:
            self.init()
            for attempt in range(START_ATTEMPTS):
                try:
                    self.start()
                    break
                except PortTaken:
                    # The free port was taken between our look and the server's bind
                    # (another test process, say): another one, while we chose it.
                    if not self.port_chosen or attempt == START_ATTEMPTS - 1:
                        raise
                    self.port = free_port()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


async def create_database(admin_url: str, name: str, template: str | None = None) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        template_clause = f" TEMPLATE {template}" if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{template_clause}')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        with contextlib.suppress(asyncpg.exceptions.InvalidCatalogNameError):
            await connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await connection.close()
