"""Run the schema migrations (Alembic) against a Conveyor database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from conveyor.domain.errors import ConveyorError
from conveyor.store.urls import DatabaseURL

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HOW_TO_MIGRATE = "run `conveyor migrate` or serve with --migrate"
"""What brings a database to this Conveyor's schema (a SQLite file is created too)."""


class DatabaseMissing(ConveyorError):
    """Nothing where the URL points: no SQLite file, or a PostgreSQL database never created."""


class SchemaOutOfDate(ConveyorError):
    """The database's schema is at another revision than this Conveyor's."""


def alembic_config(url: DatabaseURL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic reads options through ConfigParser: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", url.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(url: DatabaseURL, revision: str = "head") -> str | None:
    """Bring the database up to `revision` and answer the revision it was at (None: empty).
    Safe to run again: applied steps are skipped. A PostgreSQL database never created is
    DatabaseMissing, said in one line before Alembic is asked."""
    before = current_revision(url)
    if url.kind == "sqlite":
        url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    return before


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def current_revision(url: DatabaseURL) -> str | None:
    """The revision the database is at (None for an empty database, and for a SQLite file
    not there yet: looking creates none). SQLite only needs the file; PostgreSQL is asked
    through the synchronous path of the async driver, and a database there that does not
    exist is DatabaseMissing."""
    if url.kind == "sqlite":
        if not url.sqlite_path.exists():
            return None
        engine = create_engine(url.sqlalchemy_url, poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        finally:
            engine.dispose()
    import asyncio

    import asyncpg
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import create_async_engine

    from conveyor.store.postgres import translate_error

    async def read() -> str | None:
        engine = create_async_engine(url.sqlalchemy_url, poolclass=pool.NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: MigrationContext.configure(sync).get_current_revision()
                )
        finally:
            await engine.dispose()

    try:
        return asyncio.run(read())
    except DBAPIError as error:
        # SQLAlchemy wraps asyncpg's error and keeps its SQLSTATE.
        if getattr(error.orig, "sqlstate", None) == asyncpg.InvalidCatalogNameError.sqlstate:
            raise DatabaseMissing(
                f"the database {url.redacted()} does not exist: create it (`createdb` or "
                f"CREATE DATABASE), then {HOW_TO_MIGRATE}"
            ) from None
        raise
    except OSError as error:  # refused, an unknown host: said as the store says it
        raise translate_error(error) or error from error


def require_current_schema(url: DatabaseURL) -> None:
    """Refuse a database this Conveyor cannot use as it is: missing (a SQLite file is not
    created by looking for it) or at another schema revision than the code's."""
    if url.kind == "sqlite" and not url.sqlite_path.exists():
        raise DatabaseMissing(
            f"there is no database at {url.sqlite_path.absolute()}: name yours with "
            f"--database-url or CONVEYOR_DATABASE_URL, or, to create this one, {HOW_TO_MIGRATE}"
        )
    current = current_revision(url)
    if current != head_revision():
        raise SchemaOutOfDate(
            f"the database {url.redacted()} is at schema revision {current or 'none'}, "
            f"this Conveyor needs {head_revision()}: {HOW_TO_MIGRATE}"
        )
