"""A PostgreSQL database made with a language's collation (ICU en-US, as many are) orders
text by that language: case folded, punctuation skipped. A list by name must still read
in the order SQLite's byte-by-byte comparison gives (the suite's own server is made with
`--locale=C`, where the two agree anyway)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest

from conveyor.domain.schedules import ScheduledJob, ScheduleSpec
from conveyor.service.jobs import JobService
from conveyor.service.schedules import ScheduleService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import open_store
from conveyor.store.migrate import upgrade
from conveyor.store.urls import DatabaseURL
from tests.conftest import ExternalPostgres, in_own_thread
from tests.support.postgres import PostgresServer, drop_database

NAMES = ["zeta", "Zeta", "a_b", "a-c", "a.d", "B", "a0", "ab"]


@pytest.fixture
async def english_database(
    postgres_server: PostgresServer | ExternalPostgres,
) -> AsyncIterator[DatabaseURL]:
    admin = postgres_server.url()
    name = f"conveyor_icu_{os.getpid()}"
    await drop_database(admin, name)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
        collated = await connection.fetchval(
            'SELECT array_agg(n ORDER BY n COLLATE "en-US-x-icu") FROM unnest($1::text[]) n',
            NAMES,
        )
    finally:
        await connection.close()
    assert collated != sorted(NAMES), "the collation orders otherwise, or this proves nothing"
    url = DatabaseURL.parse(postgres_server.url(name))
    in_own_thread(lambda: upgrade(url))
    yield url
    await drop_database(admin, name)


async def test_schedules_list_by_name_byte_by_byte_under_a_language_collation(
    english_database: DatabaseURL,
) -> None:
    store = await open_store(english_database, pool_size=4)
    try:
        workspace = await WorkspaceService(store).create_workspace("acme")
        schedules = ScheduleService(store, JobService(store))
        for name in NAMES:
            spec = ScheduleSpec(name=name, cron="@daily", job=ScheduledJob(type="t"))
            await schedules.create_schedule(workspace.id, spec)
        listed = await schedules.list_schedules(workspace.id)
        assert [schedule.name for schedule in listed.schedules] == sorted(NAMES)
        paged: list[str] = []
        cursor = None
        while True:
            page = await schedules.list_schedules(workspace.id, limit=3, cursor=cursor)
            paged += [schedule.name for schedule in page.schedules]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert paged == sorted(NAMES)
    finally:
        await store.close()
