"""Run the schema migrations (Alembic) against a Conveyor database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from conveyor.store.urls import DatabaseURL

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: DatabaseURL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic reads options through ConfigParser: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", url.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(url: DatabaseURL, revision: str = "head") -> None:
    """Bring the database up to `revision`. Safe to run again: applied steps are skipped."""
    if url.kind == "sqlite":
        url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def current_revision(url: DatabaseURL) -> str | None:
    """The revision the database is at (None for an empty database). SQLite only needs
    the file; PostgreSQL is asked through the synchronous path of the async driver."""
    if url.kind == "sqlite":
        engine = create_engine(url.sqlalchemy_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        finally:
            engine.dispose()
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def read() -> str | None:
        engine = create_async_engine(url.sqlalchemy_url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())
