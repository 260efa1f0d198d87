"""The test suite's PostgreSQL: the throwaway server of `devtools.postgres`, and a server
of its own for a test that stops or restarts it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from devtools.postgres import (
    PostgresServer,
    create_database,
    drop_database,
    find_postgres_bin,
    free_port,
)

from conveyor.store.urls import DatabaseURL

__all__ = [
    "PostgresServer",
    "create_database",
    "drop_database",
    "find_postgres_bin",
    "free_port",
    "postgres_of_its_own",
]


@contextlib.asynccontextmanager
async def postgres_of_its_own(
    settings: dict[str, str] | None = None,
) -> AsyncIterator[tuple[PostgresServer, DatabaseURL, str]]:
    """A PostgreSQL server for one test that stops or restarts it: migrated, with workspace
    `acme` and an admin key (returned with the server and its URL). `settings` override
    the test server's (e.g. `synchronous_commit=on`, for a test that crashes it and expects
    every commit to survive)."""
    from conveyor.domain.workspaces import Role
    from conveyor.service.workspaces import WorkspaceService
    from conveyor.store import open_store
    from conveyor.store.migrate import upgrade

    with PostgresServer(extra_settings=settings) as postgres:
        url = DatabaseURL.parse(postgres.url())
        await asyncio.to_thread(upgrade, url)
        store = await open_store(url, pool_size=2)
        workspaces = WorkspaceService(store)
        acme = await workspaces.create_workspace("acme")
        admin = (await workspaces.create_key(acme.id, Role.ADMIN)).token
        await store.close()
        yield postgres, url, admin
