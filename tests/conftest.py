"""Shared fixtures. Every store-backed test runs twice: on a SQLite file and on a real
PostgreSQL server (started once per session, one fresh database per test, cloned from a
migrated template)."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.migrate import upgrade
from conveyor.store.urls import DatabaseURL
from tests.support.postgres import PostgresServer, create_database, drop_database

T = TypeVar("T")
BACKENDS = ("sqlite", "postgresql")
_database_numbers = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under work stealing (`make test`: `--dist worksteal`), the tests marked `slow`
    (minutes: the benchmark smoke runs, the drills, the API fuzzing) are collected first:
    the first worker starts on them at once while the others take the rest of its share,
    instead of one of them starting late and ending the run alone. (Under `--dist load`
    the first worker would keep its whole share: the order is left as collected.)"""
    if config.getoption("dist", "no") == "worksteal":
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


class ExternalPostgres:
    """A server someone else runs (CONVEYOR_TEST_POSTGRES_URL=postgresql://…/postgres)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url(self, database: str = "postgres") -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | ExternalPostgres]:
    external = os.environ.get("CONVEYOR_TEST_POSTGRES_URL")
    if external:
        yield ExternalPostgres(external)
        return
    with PostgresServer() as server:
        yield server


def in_own_thread(function: Callable[[], T]) -> T:
    """Run blocking set-up (which may itself call asyncio.run) off the test's event loop:
    session fixtures are first requested from inside async tests."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(function).result()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer | ExternalPostgres) -> Iterator[str]:
    """The migrated database each test's is created from: one per test process (pytest-xdist
    runs several, each building its own, on the same server when it is an external one)."""
    admin = postgres_server.url()
    name = f"conveyor_template_{os.getpid()}"

    def build() -> None:
        asyncio.run(drop_database(admin, name))
        asyncio.run(create_database(admin, name))
        upgrade(DatabaseURL.parse(postgres_server.url(name)))

    in_own_thread(build)
    yield name
    in_own_thread(lambda: asyncio.run(drop_database(admin, name)))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "conveyor.db"
    in_own_thread(lambda: upgrade(DatabaseURL.parse(f"sqlite:///{path}")))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseURL]:
    """A migrated, empty database of the parametrised backend, private to this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "conveyor.db"
        shutil.copyfile(template, path)
        yield DatabaseURL.parse(f"sqlite:///{path}")
        return
    server: PostgresServer | ExternalPostgres = request.getfixturevalue("postgres_server")
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    await create_database(server.url(), name, template=template_name)
    yield DatabaseURL.parse(server.url(name))
    await drop_database(server.url(), name)


@pytest.fixture
async def store(database_url: DatabaseURL) -> AsyncIterator[Store]:
    opened = await open_store(database_url, sqlite_synchronous="NORMAL", pool_size=60)
    yield opened
    await opened.close()


@pytest.fixture
def service(store: Store) -> JobService:
    return JobService(store)


@pytest.fixture
async def workspace(store: Store) -> Workspace:
    return await WorkspaceService(store).create_workspace("acme")


# -- a running server and keys for it -------------------------------------------------------

import httpx  # noqa: E402

from conveyor.config import Settings  # noqa: E402
from conveyor.domain.workspaces import Role  # noqa: E402
from tests.support.server import RunningServer, running_server  # noqa: E402


def settings_for(database_url: DatabaseURL, **overrides: object) -> Settings:
    defaults: dict[str, object] = {
        "database_url": database_url.url,
        "sqlite_synchronous": "NORMAL",
        "reaper_interval_seconds": 0.2,
        "claim_poll_interval_seconds": 0.5,
    }
    return Settings.from_env({}, **{**defaults, **overrides})


@pytest.fixture
async def server(database_url: DatabaseURL) -> AsyncIterator[RunningServer]:
    async with running_server(settings_for(database_url)) as running:
        yield running


@pytest.fixture
async def keys(store: Store, workspace: Workspace) -> dict[str, str]:
    """One key per role in workspace `acme`, an admin key of another workspace, and the
    instance keys (bound to no workspace): a worker and an admin."""
    service = WorkspaceService(store)
    issued = {role.value: (await service.create_key(workspace.id, role)).token for role in Role}
    other = await service.create_workspace("other")
    issued["other"] = (await service.create_key(other.id, Role.ADMIN)).token
    for role in (Role.WORKER, Role.ADMIN):
        issued[f"instance_{role.value}"] = (await service.create_key(None, role)).token
    return issued


@pytest.fixture
async def client(server: RunningServer, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for workspace `acme`, authenticated as an admin."""
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/acme",
        headers={"Authorization": f"Bearer {keys['admin']}"},
        timeout=30,
    ) as http:
        yield http
