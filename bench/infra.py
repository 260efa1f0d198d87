"""The servers a benchmark run needs, started and stopped by the harness itself: one
PostgreSQL (shared by every PostgreSQL-backed system, with durable settings) and one Redis.

Every measured run gets a fresh database cloned from a per-system template (the schema
migrated once), so no run sees the rows or the bloat of another.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from devtools.postgres import PostgresServer, create_database, drop_database, free_port

DURABLE_SETTINGS = {
    # The test suite's server trades durability for speed; a benchmark must not: every
    # commit here waits for its WAL to reach the disk, as it would in production.
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "pg_stat_statements.track": "top",
    "pg_stat_statements.max": "10000",
}
REPORTED_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_sync_method",
    "shared_buffers",
    "max_connections",
)


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class Postgres:
    """A throwaway PostgreSQL server and the databases the benchmark makes on it."""

    def __init__(self) -> None:
        self.server = PostgresServer(extra_settings=DURABLE_SETTINGS)
        self._numbers = itertools.count(1)
        self.settings: dict[str, str] = {}

    @property
    def admin_url(self) -> str:
        return self.server.url()

    def url(self, database: str) -> str:
        return self.server.url(database)

    def start(self) -> None:
        self.server.init()
        self.server.start()

    def stop(self) -> None:
        self.server.cleanup()

    async def read_settings(self) -> dict[str, str]:
        connection = await asyncpg.connect(self.admin_url)
        try:
            # The counters are read from here (the maintenance database), by database oid.
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            for name in REPORTED_SETTINGS:
                self.settings[name] = str(await connection.fetchval(f"SHOW {name}"))
        finally:
            await connection.close()
        return self.settings

    async def create_template(self, name: str) -> str:
        """An empty database to migrate a system's schema into, then clone per run."""
        await drop_database(self.admin_url, name)
        await create_database(self.admin_url, name)
        await self.execute(name, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return name

    async def fresh_database(self, template: str) -> str:
        name = f"{template}_{next(self._numbers)}"
        await drop_database(self.admin_url, name)
        await create_database(self.admin_url, name, template=template)
        await self.execute(name, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return name

    async def drop(self, name: str) -> None:
        await drop_database(self.admin_url, name)

    async def execute(self, database: str, sql: str) -> None:
        connection = await asyncpg.connect(self.url(database))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def fetchval(self, database: str, sql: str, *args: Any) -> Any:
        connection = await asyncpg.connect(self.url(database))
        try:
            return await connection.fetchval(sql, *args)
        finally:
            await connection.close()

    async def wait_idle(self, database: str, within: float = 10.0) -> None:
        """Wait until no client is connected to `database`. A backend publishes its
        cumulative statistics (commits) when it exits, so counters read after this are
        complete."""
        deadline = time.monotonic() + within
        connection = await asyncpg.connect(self.admin_url)
        try:
            while time.monotonic() < deadline:
                count = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
                )
                if count == 0:
                    return
                await asyncio.sleep(0.02)
        finally:
            await connection.close()
        raise RuntimeError(f"clients still connected to {database} after {within}s")

    async def snapshot(self, database: str) -> DatabaseCounters:
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute("SELECT pg_stat_clear_snapshot()")
            row = await connection.fetchrow(
                "SELECT oid, (SELECT xact_commit FROM pg_stat_database WHERE datname = $1) "
                "AS commits FROM pg_database WHERE datname = $1",
                database,
            )
            assert row is not None
            statements = await connection.fetchrow(
                "SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(rows), 0) AS rows, "
                "coalesce(sum(wal_records), 0) AS wal_records, "
                "coalesce(sum(wal_bytes), 0) AS wal_bytes "
                "FROM pg_stat_statements WHERE dbid = $1",
                row["oid"],
            )
            assert statements is not None
            return DatabaseCounters(
                commits=int(row["commits"] or 0),
                statements=int(statements["calls"]),
                rows=int(statements["rows"]),
                wal_records=int(statements["wal_records"]),
                wal_bytes=int(statements["wal_bytes"]),
            )
        finally:
            await connection.close()

    async def reset_statements(self) -> None:
        connection = await asyncpg.connect(self.admin_url)
        try:
            await connection.execute("SELECT pg_stat_statements_reset()")
        finally:
            await connection.close()


@dataclass(frozen=True, slots=True)
class DatabaseCounters:
    """What one database did, from pg_stat_database and pg_stat_statements."""

    commits: int
    statements: int
    rows: int
    wal_records: int
    wal_bytes: int

    def minus(self, before: DatabaseCounters) -> DatabaseCounters:
        return DatabaseCounters(
            commits=self.commits - before.commits,
            # pg_stat_statements is reset at the start of the window: no subtraction.
            statements=self.statements,
            rows=self.rows,
            wal_records=self.wal_records,
            wal_bytes=self.wal_bytes,
        )


class Redis:
    """A redis-server on a free loopback port, without persistence (`--save ''
    --appendonly no`): the configuration RQ is usually benchmarked with, and a difference
    in durability from the PostgreSQL systems that the report states."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="conveyor-bench-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.version = ""

    @staticmethod
    def available() -> bool:
        """The server binary and the `redis` client (RQ's dependency) are both installed:
        `scripts/bench.sh` installs both; the test command installs neither on purpose."""
        return shutil.which("redis-server") is not None and importable("redis")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        self.version = str(client.info("server")["redis_version"])
        client.close()

    def flush(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Infra:
    """What every system may use during one harness run."""

    postgres: Postgres
    redis: Redis | None
    workdir: Path

    def sqlite_path(self, label: str) -> Path:
        path = self.workdir / f"{label}-{next(_sqlite_numbers)}.db"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")
        return path


_sqlite_numbers = itertools.count(1)


def fsync_probe(directory: Path, *, writes: int = 200, within: float = 2.0) -> dict[str, float]:
    """How fast this disk makes a write durable: 8 KiB written and `fdatasync`ed, over and
    over in one file (what a commit costs PostgreSQL's WAL or SQLite at synchronous=FULL,
    at least). In the directory the databases live in."""
    path = directory / "fsync-probe"
    block = os.urandom(8192)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        done = 0
        started = time.perf_counter()
        while done < writes and time.perf_counter() - started < within:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            done += 1
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
    return {"fdatasync_per_s": done / elapsed, "fdatasync_mean_ms": 1000 * elapsed / done}


def machine_facts(directory: Path) -> dict[str, Any]:
    """What the figures depend on: CPUs, memory, kernel, the disk's fsync rate, wrk."""
    import platform

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk is not None:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        wrk_version = (
            (done.stdout or done.stderr).splitlines()[0] if (done.stdout or done.stderr) else ""
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "disk": fsync_probe(directory),
        "wrk": wrk_version,
    }
