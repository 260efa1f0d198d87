"""The store: schema, migrations and queries for SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.store.clock import DatabaseClock
from conveyor.store.connection import Database
from conveyor.store.job_lists import JobListStore
from conveyor.store.jobs import JobStore
from conveyor.store.lifetime import LifetimeStore
from conveyor.store.limits import LimitStore
from conveyor.store.schedules import ScheduleStore
from conveyor.store.stats import StatsStore
from conveyor.store.urls import DatabaseURL
from conveyor.store.workspaces import WorkspaceStore


@dataclass(frozen=True, slots=True)
class Store:
    url: DatabaseURL
    database: Database
    jobs: JobStore
    workspaces: WorkspaceStore
    stats: StatsStore
    limits: LimitStore
    schedules: ScheduleStore
    clock: DatabaseClock
    lists: JobListStore
    lifetime: LifetimeStore

    async def close(self) -> None:
        await self.jobs.close()
        await self.database.close()


async def open_store(
    url: DatabaseURL,
    *,
    pool_size: int = 10,
    sqlite_synchronous: str = "FULL",
) -> Store:
    """Connect to the database at `url` (already migrated)."""
    if url.kind == "sqlite":
        from conveyor.store.lifetime import SqliteLifetimeStore
        from conveyor.store.sqlite import SqliteDatabase, Synchronous
        from conveyor.store.sqlite_jobs import SqliteJobStore

        assert sqlite_synchronous in ("OFF", "NORMAL", "FULL", "EXTRA")
        level: Synchronous = sqlite_synchronous  # type: ignore[assignment]
        sqlite = SqliteDatabase(url.sqlite_path, synchronous=level)
        await sqlite.open()
        return Store(
            url,
            sqlite,
            SqliteJobStore(sqlite),
            WorkspaceStore(sqlite),
            StatsStore(sqlite),
            LimitStore(sqlite),
            ScheduleStore(sqlite),
            DatabaseClock(sqlite),
            JobListStore(sqlite),
            SqliteLifetimeStore(sqlite),
        )
    from conveyor.store.lifetime import PostgresLifetimeStore
    from conveyor.store.postgres import PostgresDatabase
    from conveyor.store.postgres_jobs import PostgresJobStore

    postgres = PostgresDatabase(url.url, max_size=pool_size)
    await postgres.open()
    return Store(
        url,
        postgres,
        PostgresJobStore(postgres),
        WorkspaceStore(postgres),
        StatsStore(postgres),
        LimitStore(postgres),
        ScheduleStore(postgres),
        DatabaseClock(postgres),
        JobListStore(postgres),
        PostgresLifetimeStore(postgres),
    )
