"""The connector: the small interface the store talks to. Each driver (`sqlite.py`,
`postgres.py`) implements it.

Statements (conveyor/store/sql, loaded by `queries.py`) use `:name` parameters; a driver
rewrites them for its client library (asyncpg wants `$1`, sqlite3 takes `:name` as is),
encodes values it cannot bind natively (SQLite has no UUID, timestamp, array or JSON type)
and decodes what comes back (`ValueCodec`). What SQL a database runs differs in the query
files alone.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from conveyor.domain.events import JsonValue
from conveyor.store.queries import DialectName


@dataclass(frozen=True, slots=True)
class Json:
    """Marks a parameter as a JSON document (a bare str could be text or a JSON string)."""

    value: JsonValue


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


Params = Mapping[str, Any]


class Connection(Protocol):
    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once what this connection is writing is committed, even if the
        task that wrote it is cancelled meanwhile (at once outside a transaction)."""
        ...

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def execute(self, sql: str, params: Params | None = None) -> None: ...

    async def execute_counting(
        self, sql: str, params: Params | None = None, *, limit_seconds: float | None = None
    ) -> int:
        """Run a statement that changes rows; how many it changed. `limit_seconds`
        replaces the driver's default limit on how long a statement may take."""
        ...


class ValueCodec(abc.ABC):
    """How a driver's values become ours: SQLite keeps UUIDs and JSON as text and
    timestamps as Unix seconds; asyncpg hands them over typed already."""

    typed: bool
    """Whether every value arrives as its Python type already (rows decode by position)."""

    @abc.abstractmethod
    def uuid(self, value: Any) -> UUID: ...

    @abc.abstractmethod
    def timestamp(self, value: Any) -> datetime: ...

    @abc.abstractmethod
    def json(self, value: Any) -> JsonValue: ...

    @abc.abstractmethod
    def seconds(self, value: Any) -> float:
        """A REAL (double precision) column: a duration in seconds."""

    def optional_seconds(self, value: Any) -> float | None:
        return None if value is None else self.seconds(value)

    def optional_uuid(self, value: Any) -> UUID | None:
        return None if value is None else self.uuid(value)

    def optional_timestamp(self, value: Any) -> datetime | None:
        return None if value is None else self.timestamp(value)

    def optional_json(self, value: Any) -> JsonValue:
        return None if value is None else self.json(value)


WRITE_FAILURE_HOLD_SECONDS = 10.0
"""After a write failed for want of storage, `check_writable` reports that failure for this
long (renewed by each failure): a probe cannot see every way a disk is full, and on
PostgreSQL a write that succeeds proves little (an UPDATE may fit in its page where an
INSERT does not)."""


class Database(abc.ABC):
    """A pool of connections to one database."""

    dialect: DialectName
    """Which of the query files (conveyor/store/sql) this database runs."""
    codec: ValueCodec
    statements: int = 0
    """Statements sent so far by this process (for metrics, and tests that check load)."""

    @abc.abstractmethod
    def read(self) -> AsyncIteratorContext:
        """A connection for reads; each statement sees committed data."""

    @abc.abstractmethod
    def write(self) -> AsyncIteratorContext:
        """A connection for writes that are each one statement (their own transaction)."""

    @abc.abstractmethod
    def transaction(self) -> AsyncIteratorContext:
        """A write transaction holding the database's write lock or row locks as it goes:
        BEGIN IMMEDIATE on SQLite, BEGIN (READ COMMITTED) on PostgreSQL."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def ping(self) -> None:
        async with self.read() as connection:
            await connection.fetchrow("SELECT 1 AS ok")

    async def check_writable(self) -> None:
        """Raise what would make a write fail now (`StorageFull`, `StorageReadOnly`,
        `Unavailable`): cheap enough for a readiness probe. Each driver says how it knows."""
        await self.ping()


AsyncIteratorContext = AbstractAsyncContextManager[Connection]
