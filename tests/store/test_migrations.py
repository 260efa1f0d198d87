"""The schema the migrations build is the schema the models describe, on both databases."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from conveyor.domain.status import JobStatus, sources_for
from conveyor.store.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade
from conveyor.store.tables import metadata
from conveyor.store.urls import DatabaseURL


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_models(database_url: DatabaseURL) -> None:
    if database_url.kind == "sqlite":
        engine = create_engine(database_url.sqlalchemy_url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            differences = _differences(connection)
        engine.dispose()
    else:
        async_engine = create_async_engine(database_url.sqlalchemy_url, poolclass=pool.NullPool)
        async with async_engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        await async_engine.dispose()
    assert differences == [], f"migrations and models disagree: {differences}"


async def test_database_is_at_head_and_upgrading_again_is_a_no_op(
    database_url: DatabaseURL,
) -> None:
    import asyncio

    assert await asyncio.to_thread(current_revision, database_url) == head_revision()
    await asyncio.to_thread(upgrade, database_url)
    assert await asyncio.to_thread(current_revision, database_url) == head_revision()


def test_the_newest_migration_file_names_the_head_alembic_finds() -> None:
    """`head_revision` reads the head from the file names (Alembic and SQLAlchemy cost
    every database command ~0.7 s to import): that holds while every migration is
    `NNNN_what.py` with revision `NNNN` and one line of them, each revising the one
    before."""
    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    chain = list(reversed(list(scripts.walk_revisions())))
    assert [script.revision for script in chain] == sorted(script.revision for script in chain)
    for before, script in zip([None, *chain], chain, strict=False):
        assert script.down_revision == (before and before.revision), script.path
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
    assert head_revision() == scripts.get_current_head() == chain[-1].revision


async def test_an_empty_database_is_at_no_revision_and_looking_creates_nothing(
    tmp_path: Path, database_url: DatabaseURL
) -> None:
    missing = DatabaseURL.parse(f"sqlite:///{tmp_path / 'not-there.db'}")
    assert await asyncio.to_thread(current_revision, missing) is None
    assert not missing.sqlite_path.exists()
    if database_url.kind == "sqlite":
        empty = DatabaseURL.parse(f"sqlite:///{tmp_path / 'empty.db'}")
        sqlite3.connect(empty.sqlite_path).close()
        assert await asyncio.to_thread(current_revision, empty) is None


async def test_events_from_before_0009_come_first_and_new_ones_carry_their_transaction(
    postgres_server: Any,
) -> None:
    import asyncpg

    from tests.conftest import in_own_thread
    from tests.support.postgres import create_database, drop_database

    name = f"migrate_0009_{os.getpid()}"
    await create_database(postgres_server.url(), name)
    url = DatabaseURL.parse(postgres_server.url(name))
    try:
        in_own_thread(lambda: upgrade(url, "0008"))
        connection = await asyncpg.connect(url.url)
        try:
            insert_event = (
                "INSERT INTO events (job_id, workspace_id, job_type, seq, type, actor, "
                "payload, created_at) VALUES (gen_random_uuid(), gen_random_uuid(), 't', $1, "
                "'test.tick', 'test', '{}', now())"
            )
            await connection.execute(insert_event, 1)
            in_own_thread(lambda: upgrade(url))
            await connection.execute(insert_event, 2)
            rows = await connection.fetch("SELECT seq, tx FROM events ORDER BY id")
            current = await connection.fetchval("SELECT pg_current_xact_id()::text::bigint")
        finally:
            await connection.close()
    finally:
        await drop_database(postgres_server.url(), name)
    assert rows[0]["tx"] == 1, "rows from before the migration sort before any transaction"
    assert 1 < rows[1]["tx"] < current, "a new row records the transaction that wrote it"


def test_sqlite_never_hands_out_an_event_id_again_after_0014(tmp_path: Any) -> None:
    """Event ids are stream positions: once the newest events are pruned, SQLite (without
    AUTOINCREMENT) would give the next event an id already sent."""
    import sqlite3

    path = tmp_path / "ids.db"
    url = DatabaseURL.parse(f"sqlite:///{path}")
    upgrade(url, "0013")
    insert = (
        "INSERT INTO events (job_id, workspace_id, job_type, seq, type, actor, payload, "
        "created_at) VALUES ('j', 'w', 't', ?, 'test.tick', 'test', '{}', 0)"
    )
    with sqlite3.connect(path) as connection:
        for seq in (1, 2, 3):
            connection.execute(insert, (seq,))
    upgrade(url)
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM events WHERE id >= 2")
        new_id = connection.execute(insert, (4,)).lastrowid
    assert new_id == 4, "an id from before the migration was handed out again"


async def test_postgresql_tables_have_their_storage_settings(database_url: DatabaseURL) -> None:
    """The queue tables are vacuumed sooner (migration 0014); `limits` leaves room in its
    pages for the counts every claim under limits updates (migration 0021)."""
    if database_url.kind != "postgresql":
        return
    import asyncpg

    from conveyor.store.tables import LIMITS_STORAGE, QUEUE_TABLE_STORAGE

    wanted = {
        **dict.fromkeys(("jobs", "events", "steps"), QUEUE_TABLE_STORAGE),
        "limits": LIMITS_STORAGE,
    }
    connection = await asyncpg.connect(database_url.url)
    try:
        rows = await connection.fetch(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY($1::text[])",
            list(wanted),
        )
    finally:
        await connection.close()
    found = {row["relname"]: set(row["reloptions"] or ()) for row in rows}
    for table, storage in wanted.items():
        assert found[table] >= {f"{name}={value}" for name, value in storage.items()}, table


def test_limits_count_the_jobs_running_under_them_from_0018_on(tmp_path: Any) -> None:
    """A database from before 0018 with jobs running under a limit: they are counted, and
    leaving RUNNING takes them off (SQLite's trigger)."""
    import sqlite3

    path = tmp_path / "counts.db"
    url = DatabaseURL.parse(f"sqlite:///{path}")
    upgrade(url, "0017")
    insert_job = (
        "INSERT INTO jobs (id, workspace_id, type, status, priority, payload, "
        "progress_percent, attempt, max_attempts, run_at, retry_backoff_seconds, "
        "retry_backoff_max_seconds, created_at, updated_at, version, last_event_seq, "
        "last_step_ordinal, lease_id, lease_expires_at, concurrency_key) "
        "VALUES (?, 'w', ?, ?, 5, '{}', 0, 1, 1, 0, 1, 60, 0, 0, 1, 1, 0, 'l', 9e9, ?)"
    )
    with sqlite3.connect(path) as connection:
        connection.executemany(
            insert_job,
            [
                ("j1", "t", "RUNNING", "k"),
                ("j2", "u", "RUNNING", "k"),
                ("j3", "t", "RUNNING", None),
                ("j4", "t", "QUEUED", "k"),
            ],
        )
        for name in ("k", "type:t"):
            connection.execute(
                "INSERT INTO limits (workspace_id, name, paused, created_at, updated_at) "
                "VALUES ('w', ?, 0, 0, 0)",
                (name,),
            )
    upgrade(url)
    count = "SELECT name, running FROM limits ORDER BY name"
    with sqlite3.connect(path) as connection:
        assert connection.execute(count).fetchall() == [("k", 2), ("type:t", 2)]
        connection.execute("UPDATE jobs SET status = 'FAILED' WHERE id = 'j1'")
        assert connection.execute(count).fetchall() == [("k", 1), ("type:t", 1)]
        # From 0022 a completion is taken off by the store's batch, not by the trigger.
        connection.execute("UPDATE jobs SET status = 'COMPLETED' WHERE id = 'j3'")
        assert connection.execute(count).fetchall() == [("k", 1), ("type:t", 1)]


INSERT_JOB = (
    "INSERT INTO jobs (id, workspace_id, type, status, priority, payload, "
    "progress_percent, attempt, max_attempts, run_at, retry_backoff_seconds, "
    "retry_backoff_max_seconds, created_at, updated_at, version, last_event_seq, "
    "last_step_ordinal, lease_id, lease_expires_at, concurrency_key, limited) "
    "VALUES (gen_random_uuid(), $1, $2, $3, 5, '{}', 0, 1, 1, now(), 1, 60, now(), "
    "now(), 1, 1, 0, gen_random_uuid(), now() + interval '1 hour', $4, $5) RETURNING id"
)
"""On PostgreSQL, a job of a workspace, type, status and key, `limited` or not, as the
schema stands from 0017 on."""


async def test_postgresql_limits_count_their_running_jobs_from_0018_on(
    postgres_server: Any,
) -> None:
    """As on SQLite above; on PostgreSQL a job leaving RUNNING writes a leave that the
    count read by `GET …/limits` subtracts until a claim folds it."""
    import asyncpg

    from tests.conftest import in_own_thread
    from tests.support.postgres import create_database, drop_database

    name = f"migrate_0018_{os.getpid()}"
    await create_database(postgres_server.url(), name)
    url = DatabaseURL.parse(postgres_server.url(name))
    try:
        in_own_thread(lambda: upgrade(url, "0017"))
        connection = await asyncpg.connect(url.url)
        try:
            workspace = await connection.fetchval(
                "INSERT INTO workspaces (id, slug, created_at, weight) "
                "VALUES (gen_random_uuid(), 'w', now(), 1) RETURNING id"
            )
            first = await connection.fetchval(INSERT_JOB, workspace, "t", "RUNNING", "k", False)
            await connection.fetchval(INSERT_JOB, workspace, "u", "RUNNING", "k", False)
            await connection.fetchval(INSERT_JOB, workspace, "t", "QUEUED", "k", False)
            for limit in ("k", "type:t"):
                await connection.execute(
                    "INSERT INTO limits (workspace_id, name, paused, created_at, updated_at) "
                    "VALUES ($1, $2, false, now(), now())",
                    workspace,
                    limit,
                )
            in_own_thread(lambda: upgrade(url))
            count = "SELECT name, running FROM limits ORDER BY name"
            counted = [tuple(row) for row in await connection.fetch(count)]
            # Failed: from 0022 a completion's statement writes its leave, not the trigger.
            await connection.execute("UPDATE jobs SET status = 'FAILED' WHERE id = $1", first)
            leaves = await connection.fetch("SELECT concurrency_key, type FROM limit_leaves")
        finally:
            await connection.close()
    finally:
        await drop_database(postgres_server.url(), name)
    assert counted == [("k", 2), ("type:t", 1)]
    assert [tuple(row) for row in leaves] == [("k", "t")]


async def test_postgresql_leaves_no_limit_would_take_go_at_0020(postgres_server: Any) -> None:
    """From 0020 the leave trigger asks nothing of the limits: the upgrade clears `limited`
    on running jobs no limit of whose names exists, and drops the leaves of workspaces
    without limits; a job a limit governs still writes its leave."""
    import asyncpg

    from tests.conftest import in_own_thread
    from tests.support.postgres import create_database, drop_database

    name = f"migrate_0020_{os.getpid()}"
    await create_database(postgres_server.url(), name)
    url = DatabaseURL.parse(postgres_server.url(name))
    insert_workspace = (
        "INSERT INTO workspaces (id, slug, created_at, weight) "
        "VALUES (gen_random_uuid(), $1, now(), 1) RETURNING id"
    )
    try:
        in_own_thread(lambda: upgrade(url, "0019"))
        connection = await asyncpg.connect(url.url)
        try:
            governed = await connection.fetchval(insert_workspace, "governed")
            bare = await connection.fetchval(insert_workspace, "bare")
            await connection.execute(
                "INSERT INTO limits (workspace_id, name, paused, created_at, updated_at, running) "
                "VALUES ($1, 'k', false, now(), now(), 1)",
                governed,
            )
            counted = await connection.fetchval(INSERT_JOB, governed, "t", "RUNNING", "k", True)
            await connection.fetchval(INSERT_JOB, governed, "t", "RUNNING", "gone", True)
            await connection.fetchval(INSERT_JOB, bare, "t", "RUNNING", "k", True)
            await connection.execute(
                "INSERT INTO limit_leaves (workspace_id, concurrency_key, type) "
                "VALUES ($1, 'k', 't'), ($2, 'k', 't')",
                governed,
                bare,
            )
            in_own_thread(lambda: upgrade(url))
            flags = await connection.fetch(
                "SELECT w.slug, j.concurrency_key, j.limited FROM jobs j "
                "JOIN workspaces w ON w.id = j.workspace_id ORDER BY 1, 2"
            )
            await connection.execute("UPDATE jobs SET status = 'FAILED' WHERE id = $1", counted)
            await connection.execute("UPDATE jobs SET status = 'FAILED' WHERE NOT limited")
            # The trigger asks nothing: a limited job leaving a workspace without limits
            # still writes its leave (which only a limit created there would discard).
            await connection.execute(
                "UPDATE jobs SET status = 'RUNNING', limited = true WHERE workspace_id = $1",
                bare,
            )
            await connection.execute(
                "UPDATE jobs SET status = 'FAILED' WHERE workspace_id = $1", bare
            )
            leaves = await connection.fetch(
                "SELECT w.slug, l.concurrency_key FROM limit_leaves l "
                "JOIN workspaces w ON w.id = l.workspace_id ORDER BY 1"
            )
        finally:
            await connection.close()
    finally:
        await drop_database(postgres_server.url(), name)
    assert [tuple(row) for row in flags] == [
        ("bare", "k", False),
        ("governed", "gone", False),
        ("governed", "k", True),
    ]
    assert [tuple(row) for row in leaves] == [("bare", "k"), ("governed", "k"), ("governed", "k")]


async def test_postgresql_completions_write_their_own_leaves_from_0022(
    postgres_server: Any,
) -> None:
    """From 0022 the trigger writes the leave of a limited job that fails, is cancelled or
    goes back to the queue, and wakes its workspace's claimers, but not of one completed:
    the completing statement does that (tests/service/test_limit_counts.py counts both
    ways of completing, tests/api/test_wakeups.py wakes by them)."""
    import asyncpg

    # What the migration rests on: a completion moves a job only from RUNNING.
    assert sources_for(JobStatus.COMPLETED, by_system=True) == {JobStatus.RUNNING}

    from tests.conftest import in_own_thread
    from tests.support.postgres import create_database, drop_database

    name = f"migrate_0022_{os.getpid()}"
    await create_database(postgres_server.url(), name)
    url = DatabaseURL.parse(postgres_server.url(name))
    heard: list[str] = []
    try:
        in_own_thread(lambda: upgrade(url))
        connection = await asyncpg.connect(url.url)
        listener = await asyncpg.connect(url.url)
        try:
            await listener.add_listener("conveyor_jobs", lambda *args: heard.append(args[3]))
            workspace = await connection.fetchval(
                "INSERT INTO workspaces (id, slug, created_at, weight) "
                "VALUES (gen_random_uuid(), 'w', now(), 1) RETURNING id"
            )
            for status in ("COMPLETED", "FAILED", "CANCELLED", "QUEUED"):
                job = await connection.fetchval(INSERT_JOB, workspace, "t", "RUNNING", "k", True)
                await connection.execute(f"UPDATE jobs SET status = '{status}' WHERE id = $1", job)
            leaves = await connection.fetch("SELECT concurrency_key, type FROM limit_leaves")
            await connection.execute("NOTIFY conveyor_jobs, 'end'")  # after every other
            for _ in range(200):
                if heard[-1:] == ["end"]:
                    break
                await asyncio.sleep(0.05)
        finally:
            await listener.close()
            await connection.close()
    finally:
        await drop_database(postgres_server.url(), name)
    assert [tuple(row) for row in leaves] == [("k", "t")] * 3
    assert heard == [str(workspace)] * 3 + ["end"]
