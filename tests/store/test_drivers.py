"""The drivers under faults, for real: a write transaction that fails (at a statement or at
COMMIT) leaves the connection outside a transaction, so the next write works; a database
out of room or read-only is reported as `StorageFull` / `StorageReadOnly`, by the failing
write and by `check_writable`.

SQLite is filled for real with its size limit (`PRAGMA max_page_count`) on the writer
connection, and made read-only with `PRAGMA query_only`; PostgreSQL is made read-only with
`default_transaction_read_only` for the database (new sessions get it). A disk that is
really full is the drills' part (tests/drills)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import uuid4

import asyncpg
import pytest

from conveyor.domain.errors import StorageFull, StorageReadOnly
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import JobSpec
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.connection import Database
from conveyor.store.postgres import PostgresDatabase, translate_error
from conveyor.store.urls import DatabaseURL

BLOB = "x" * 2000


@pytest.fixture
async def lone_store(database_url: DatabaseURL) -> AsyncIterator[Store]:
    """A store with a single connection to write on (PostgreSQL: a pool of one), so that
    the write after a failure runs on the very connection that failed."""
    opened = await open_store(database_url, sqlite_synchronous="NORMAL", pool_size=1)
    yield opened
    await opened.close()


async def set_size_limit(database: Database, *, extra_pages: int) -> None:
    """SQLite: let the database grow by at most `extra_pages` pages from now on."""
    async with database.write() as connection:
        row = await connection.fetchrow("PRAGMA page_count")
        assert row is not None
        await connection.execute(f"PRAGMA max_page_count = {row[0] + extra_pages}")


async def lift_size_limit(database: Database) -> None:
    async with database.write() as connection:
        await connection.execute("PRAGMA max_page_count = 1073741823")


async def fill_until_full(write: Callable[[], Awaitable[object]], *, at_most: int = 10_000) -> int:
    """Write until the database is full; how many writes succeeded before."""
    for done in range(at_most):
        try:
            await write()
        except StorageFull:
            return done
    raise AssertionError(f"{at_most} writes and the database is still not full")


async def take_a_free_page(database: Database) -> None:
    async with database.write() as connection:
        await connection.execute(f"CREATE TABLE padding_{uuid4().hex} (x)")


async def count_jobs(service: JobService, workspace: Workspace) -> int:
    return (await service.list_jobs(workspace.id, JobFilter(), page=1, limit=1)).total


FAILING_COMMIT = {
    # A deferred constraint is checked at COMMIT: the transaction's statements all
    # succeed and the COMMIT itself fails, as it can for a full disk.
    "sqlite": [
        "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)",
        "CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) "
        "DEFERRABLE INITIALLY DEFERRED)",
        "INSERT INTO child VALUES (1)",
    ],
    "postgresql": [
        "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY) ON COMMIT DROP",
        "CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) "
        "DEFERRABLE INITIALLY DEFERRED) ON COMMIT DROP",
        "INSERT INTO child VALUES (1)",
    ],
}


async def test_a_failed_commit_leaves_no_transaction_open(lone_store: Store, backend: str) -> None:
    async def failing_commit() -> None:
        async with lone_store.database.transaction() as connection:
            for statement in FAILING_COMMIT[backend]:
                await connection.execute(statement)

    for _ in range(2):  # and again: the first failure left nothing behind
        with pytest.raises(Exception, match=r"(?i)foreign key"):
            await failing_commit()
    workspace = await WorkspaceService(lone_store).create_workspace("after-commit")
    service = JobService(lone_store)
    job, created = await service.create_job(workspace.id, JobSpec(type="t"), "test")
    assert created
    cancelled = await service.cancel_job(workspace.id, job.id, "test")  # a transaction()
    assert cancelled.status == "CANCELLED"


async def test_a_full_sqlite_database_is_storage_full_and_writes_resume_with_room(
    lone_store: Store, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL's full disk needs a small file system: tests/drills")
    workspace = await WorkspaceService(lone_store).create_workspace("full")
    service = JobService(lone_store)
    await set_size_limit(lone_store.database, extra_pages=5)
    stored = await fill_until_full(
        lambda: service.create_job(workspace.id, JobSpec(type="t", payload={"b": BLOB}), "t")
    )
    assert await count_jobs(service, workspace) == stored, "the failed create left a trace"
    with pytest.raises(StorageFull):
        await lone_store.database.check_writable()
    with pytest.raises(StorageFull):  # still full, and still failing cleanly
        await service.create_jobs(workspace.id, [JobSpec(type="t", payload={"b": BLOB})] * 20, "t")

    await lift_size_limit(lone_store.database)
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), "t")
    assert (await service.cancel_job(workspace.id, job.id, "t")).status == "CANCELLED"
    await lone_store.database.check_writable()
    assert await count_jobs(service, workspace) == stored + 1


async def test_sqlite_refuses_writes_while_the_full_probe_fails_before_any_write(
    lone_store: Store, backend: str
) -> None:
    """`check_writable` sees a database at its size limit before a write fails on it."""
    if backend != "sqlite":
        pytest.skip("SQLite's size limit")
    await lone_store.database.check_writable()
    workspace = await WorkspaceService(lone_store).create_workspace("probe")
    service = JobService(lone_store)
    await set_size_limit(lone_store.database, extra_pages=0)
    await fill_until_full(  # what room the last pages have
        lambda: service.create_job(workspace.id, JobSpec(type="t", payload={"b": BLOB}), "t")
    )
    # A job needs pages in several tables and indexes, so one can fail while a free page is
    # left, and the probe needs only one: tables of their own take what is left. (Which
    # pages are free depends on the schema: since migration 0019 one was, and the probe
    # passed on a file no job fitted in.)
    await fill_until_full(lambda: take_a_free_page(lone_store.database))
    # A fresh store on the full file: no failed write of its own to remember.
    fresh = await open_store(lone_store.url, sqlite_synchronous="NORMAL")
    try:
        await set_size_limit(fresh.database, extra_pages=0)
        with pytest.raises(StorageFull):
            await fresh.database.check_writable()
    finally:
        await fresh.close()


async def test_a_read_only_sqlite_database_is_storage_read_only(
    lone_store: Store, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's query_only")
    workspace = await WorkspaceService(lone_store).create_workspace("ro")
    service = JobService(lone_store)
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), "t")
    async with lone_store.database.write() as connection:
        await connection.execute("PRAGMA query_only = ON")
    with pytest.raises(StorageReadOnly):
        await service.create_job(workspace.id, JobSpec(type="t"), "t")
    with pytest.raises(StorageReadOnly):
        await service.cancel_job(workspace.id, job.id, "t")
    with pytest.raises(StorageReadOnly):
        await lone_store.database.check_writable()
    async with lone_store.database.write() as connection:
        await connection.execute("PRAGMA query_only = OFF")
    assert (await service.cancel_job(workspace.id, job.id, "t")).status == "CANCELLED"
    await lone_store.database.check_writable()


async def make_read_only(database_url: DatabaseURL, database: Database, on: bool) -> None:
    """PostgreSQL: sessions of this database are read-only (or not) from now on; the
    pool's connections are replaced so that they are such sessions."""
    admin = await asyncpg.connect(
        database_url.url, server_settings={"default_transaction_read_only": "off"}
    )
    try:
        name = await admin.fetchval("SELECT current_database()")
        setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
        await admin.execute(f'ALTER DATABASE "{name}" {setting}')
    finally:
        await admin.close()
    assert isinstance(database, PostgresDatabase)
    await database.pool.expire_connections()


async def test_a_read_only_postgresql_database_is_storage_read_only(
    lone_store: Store, database_url: DatabaseURL, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's default_transaction_read_only")
    workspace = await WorkspaceService(lone_store).create_workspace("ro")
    service = JobService(lone_store)
    job, _ = await service.create_job(workspace.id, JobSpec(type="t"), "t")
    await lone_store.database.check_writable()
    await make_read_only(database_url, lone_store.database, True)
    try:
        with pytest.raises(StorageReadOnly):
            await lone_store.database.check_writable()
        with pytest.raises(StorageReadOnly):
            await service.create_job(workspace.id, JobSpec(type="t"), "t")
        with pytest.raises(StorageReadOnly):
            await service.cancel_job(workspace.id, job.id, "t")
        assert (await service.get_job(workspace.id, job.id)).status == "QUEUED"
    finally:
        await make_read_only(database_url, lone_store.database, False)
    assert (await service.cancel_job(workspace.id, job.id, "t")).status == "CANCELLED"
    await lone_store.database.check_writable()


def test_postgresql_storage_errors_are_the_domains() -> None:
    """What PostgreSQL answers for a full disk or a read-only transaction (the drills fill
    a real disk; here, the mapping of its SQLSTATEs)."""
    full = translate_error(asyncpg.exceptions.DiskFullError("could not extend file"))
    assert isinstance(full, StorageFull)
    read_only = translate_error(
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT")
    )
    assert isinstance(read_only, StorageReadOnly)
    assert translate_error(asyncpg.exceptions.UniqueViolationError("dup")) is None
