"""The schema the migrations build is the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from conveyor.store.migrate import current_revision, head_revision, upgrade
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
