"""Run the schema migrations (Alembic) against a Conveyor database."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.domain.errors import ConveyorError
from conveyor.store.urls import DatabaseURL

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
HOW_TO_MIGRATE = "run `conveyor migrate` or serve with --migrate"
"""What brings a database to this Conveyor's schema (a SQLite file is created too)."""


class DatabaseMissing(ConveyorError):
    """Nothing where the URL points: no SQLite file, or a PostgreSQL database never created."""


class SchemaOutOfDate(ConveyorError):
    """The database's schema is at another revision than this Conveyor's."""


def alembic_config(url: DatabaseURL) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic reads options through ConfigParser: a literal % must be doubled.
    config.set_main_option("sqlalchemy.url", url.sqlalchemy_url.replace("%", "%%"))
    return config


def upgrade(url: DatabaseURL, revision: str = "head") -> str | None:
    """Bring the database up to `revision` and answer the revision it was at (None: empty).
    Safe to run again: applied steps are skipped. A PostgreSQL database never created is
    DatabaseMissing, said in one line before Alembic is asked."""
    from alembic import command

    before = current_revision(url)
    if url.kind == "sqlite":
        url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    return before


def head_revision() -> str:
    """The revision of this Conveyor's schema: its newest migration's. Each migration is
    `NNNN_what.py` with revision `NNNN`, revising the one before it (tests/store/
    test_migrations.py holds Alembic's own graph to that), so the newest file's number is
    the head without importing Alembic and SQLAlchemy: ~0.7 s of every database command
    (`conveyor key list`, …), which only asks whether the database is at the head."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS_DIR.glob("[0-9]*_*.py"))


def current_revision(url: DatabaseURL) -> str | None:
    """The revision the database is at, from Alembic's own table (None for an empty
    database, and for a SQLite file not there yet: looking creates none), read through
    the drivers the store uses. A PostgreSQL database that does not exist is
    DatabaseMissing; one that cannot be reached is said as the store says it."""
    if url.kind == "sqlite":
        if not url.sqlite_path.exists():
            return None
        location = f"{url.sqlite_path.absolute().as_uri()}?mode=ro"  # never creates one
        with closing(sqlite3.connect(location, uri=True)) as connection:
            try:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):  # never migrated
                    return None
                raise
        return None if row is None else str(row[0])
    import asyncpg

    from conveyor.store.postgres import translate_error

    async def read() -> str | None:
        connection = await asyncpg.connect(url.url)
        try:
            version = await connection.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:  # never migrated
            return None
        finally:
            await connection.close()
        return None if version is None else str(version)

    try:
        return asyncio.run(read())
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseMissing(
            f"the database {url.redacted()} does not exist: create it (`createdb` or "
            f"CREATE DATABASE), then {HOW_TO_MIGRATE}"
        ) from None
    except (OSError, asyncpg.PostgresError) as error:  # refused, an unknown host, …
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
