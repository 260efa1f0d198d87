"""Fixtures for service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from conveyor.service.jobs import JobService
from conveyor.store import Store, open_store
from conveyor.store.urls import DatabaseURL

SERVICES_PER_DATABASE = 5


@pytest.fixture
async def services(
    database_url: DatabaseURL, service: JobService
) -> AsyncIterator[list[JobService]]:
    """Several services, each on its own store (own connections) to the same database."""
    extra: list[Store] = []
    for _ in range(SERVICES_PER_DATABASE - 1):
        extra.append(await open_store(database_url, sqlite_synchronous="NORMAL", pool_size=20))
    yield [service, *(JobService(store) for store in extra)]
    for store in extra:
        await store.close()
