"""The database's clock, which leases and timeout deadlines are kept on: what a decision
that depends on the time (is this attempt past its deadline?) is given as `now`."""

from __future__ import annotations

from datetime import datetime

from conveyor.store.connection import Database
from conveyor.store.queries import Queries, queries_for


class DatabaseClock:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.queries: Queries = queries_for(database.dialect)

    async def now(self) -> datetime:
        async with self.database.read() as connection:
            row = await connection.fetchrow(self.queries["database_now"].sql)
        assert row is not None
        return self.database.codec.timestamp(row["now"])
