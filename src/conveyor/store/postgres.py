"""PostgreSQL driver (asyncpg): the store and the queue for any number of processes.

Errors that are the database's condition rather than a bug become the domain's: a lost
connection `Unavailable`, a lost race `TransientDatabaseError`, a full disk `StorageFull`,
a read-only database (a standby, or `default_transaction_read_only`) `StorageReadOnly`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from conveyor.domain.errors import (
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    TransientDatabaseError,
    Unavailable,
)
from conveyor.domain.events import JsonValue
from conveyor.serialization import dumps
from conveyor.store.connection import (
    WRITE_FAILURE_HOLD_SECONDS,
    AsyncIteratorContext,
    Database,
    Json,
    Params,
    Row,
    ValueCodec,
)
from conveyor.store.queries import DialectName

_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")

# Errors that mean "the database went away or is not ready", as opposed to a bad query.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.LockNotAvailableError,
)


@lru_cache(maxsize=1024)
def _compile(sql: str) -> tuple[str, tuple[str, ...]]:
    """Rewrite `:name` parameters to asyncpg's `$n`, once per distinct statement."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAMETER.sub(number, sql), tuple(names)


def _bind(value: Any) -> Any:
    if isinstance(value, Json):
        return value.value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset | set | tuple):
        return [_bind(item) for item in value]
    return value


def _arguments(names: tuple[str, ...], params: Params | None) -> list[Any]:
    if not names:
        return []
    assert params is not None, "statement has parameters but none were given"
    return [_bind(params[name]) for name in names]


class PostgresCodec(ValueCodec):
    """asyncpg hands every value over typed (JSON through the codec set on each
    connection), in column order."""

    typed = True

    def uuid(self, value: Any) -> UUID:
        # asyncpg's own UUID subclass is kept as it is: it compares and hashes like any
        # UUID, and conveyor.serialization writes it (converting each costs ~0.6 µs).
        return value if isinstance(value, UUID) else UUID(str(value))

    def timestamp(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value

    def json(self, value: Any) -> JsonValue:
        return value

    def seconds(self, value: Any) -> float:
        assert isinstance(value, float)
        return value


class _PostgresConnection:
    def __init__(
        self, database: PostgresDatabase, connection: asyncpg.Connection, *, in_transaction: bool
    ) -> None:
        self._database = database
        self._connection = connection
        self.callbacks: list[Callable[[], None]] | None = [] if in_transaction else None

    def after_commit(self, callback: Callable[[], None]) -> None:
        if self.callbacks is None:
            callback()
        else:
            self.callbacks.append(callback)

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        text, names = _compile(sql)
        self._database.statements += 1
        with _translated_errors(self._database):
            rows: list[Row] = await self._connection.fetch(text, *_arguments(names, params))
        return rows

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        text, names = _compile(sql)
        self._database.statements += 1
        with _translated_errors(self._database):
            row: Row | None = await self._connection.fetchrow(text, *_arguments(names, params))
        return row

    async def execute(self, sql: str, params: Params | None = None) -> None:
        text, names = _compile(sql)
        self._database.statements += 1
        with _translated_errors(self._database):
            await self._connection.execute(text, *_arguments(names, params))

    async def execute_counting(
        self, sql: str, params: Params | None = None, *, limit_seconds: float | None = None
    ) -> int:
        text, names = _compile(sql)
        self._database.statements += 1
        with _translated_errors(self._database):
            status: str = await self._connection.execute(
                text, *_arguments(names, params), timeout=limit_seconds
            )
        # The command tag ends with the row count: "UPDATE 12", "DELETE 3", "INSERT 0 5".
        return int(status.rsplit(" ", 1)[-1])


def translate_error(error: BaseException) -> Exception | None:
    """The domain's error for what PostgreSQL (or the connection to it) reported, or None
    for a plain bug."""
    if isinstance(error, RETRYABLE_ERRORS):
        return TransientDatabaseError(str(error))
    if isinstance(error, CONNECTION_ERRORS):
        return Unavailable(f"PostgreSQL is unavailable: {error}")
    if isinstance(error, asyncpg.exceptions.DiskFullError):
        return StorageFull(f"PostgreSQL cannot write: {error}")
    if isinstance(error, asyncpg.exceptions.ReadOnlySQLTransactionError):
        return StorageReadOnly(f"PostgreSQL cannot write: {error}")
    if isinstance(error, asyncpg.exceptions.InsufficientResourcesError):
        # Out of memory (53200), a configured limit (53400): the server's condition, which
        # passes; too many connections (53300) is already a connection error above.
        return Unavailable(f"PostgreSQL is short of resources: {error}")
    return None


class _translated_errors:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        if error is None:
            return
        translated = translate_error(error)
        if translated is None:
            return
        if isinstance(translated, StorageUnavailable):
            self._database.write_failed(translated)
        raise translated from error


async def _reset_connection(connection: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool. asyncpg's default sends
    RESET ALL, CLOSE ALL, UNLISTEN * and pg_advisory_unlock_all() on every release: a round
    trip per statement for session state Conveyor never sets (its LISTEN connection is not
    pooled). Only a transaction left open by a cancelled task needs ending."""
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await connection.set_type_codec(
            type_name,
            encoder=lambda value: dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


class PostgresDatabase(Database):
    dialect: DialectName = "postgresql"
    codec = PostgresCodec()

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._write_failure: tuple[float, StorageUnavailable] | None = None
        """The last write that failed for want of storage, and when."""

    def write_failed(self, error: StorageUnavailable) -> None:
        self._write_failure = (time.monotonic(), error)

    def write_succeeded(self) -> None:
        """A write statement ran and committed: the database is not read-only (it refuses
        every write statement then, even one that changes no row). Of a full disk it
        proves nothing, so that failure is held for its time."""
        if self._write_failure is not None and isinstance(self._write_failure[1], StorageReadOnly):
            self._write_failure = None

    async def check_writable(self) -> None:
        """Raise what would make a write fail now: a recent write's storage failure, a
        standby (in recovery) or a read-only session default, or no connection at all."""
        if self._write_failure is not None:
            failed_at, error = self._write_failure
            if time.monotonic() - failed_at < WRITE_FAILURE_HOLD_SECONDS:
                raise error
        # One statement, answered by any pooled connection: cheap enough for every probe.
        async with self._plain() as connection:
            row = await connection.fetchrow(
                "SELECT pg_is_in_recovery() AS standby, "
                "current_setting('transaction_read_only') = 'on' AS read_only"
            )
        assert row is not None
        if row["standby"]:
            raise StorageReadOnly("PostgreSQL is a standby (in recovery): it takes no writes")
        if row["read_only"]:
            raise StorageReadOnly(
                "PostgreSQL sessions are read-only (default_transaction_read_only)"
            )

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                init=_init_connection,
                reset=_reset_connection,
                command_timeout=60,
            )
        except CONNECTION_ERRORS as error:
            raise Unavailable(f"PostgreSQL is unavailable: {error}") from error

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "database is not open"
        return self._pool

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            connection = await self.pool.acquire()
        except CONNECTION_ERRORS as error:
            raise Unavailable(f"PostgreSQL is unavailable: {error}") from error
        try:
            yield connection
        finally:
            await self.pool.release(connection)

    def read(self) -> AsyncIteratorContext:
        return self._plain()

    def write(self) -> AsyncIteratorContext:
        return self._plain_write()

    @asynccontextmanager
    async def _plain(self) -> AsyncIterator[_PostgresConnection]:
        async with self._acquire() as connection:
            yield _PostgresConnection(self, connection, in_transaction=False)

    @asynccontextmanager
    async def _plain_write(self) -> AsyncIterator[_PostgresConnection]:
        async with self._plain() as connection:
            yield connection
        self.write_succeeded()

    def transaction(self) -> AsyncIteratorContext:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_PostgresConnection]:
        async with self._acquire() as connection:
            with _translated_errors(self):
                transaction = connection.transaction()
                await transaction.start()
            wrapped = _PostgresConnection(self, connection, in_transaction=True)
            try:
                yield wrapped
            except BaseException:
                # A broken connection cannot roll back; the pool discards it on release.
                with contextlib.suppress(Exception):
                    await transaction.rollback()
                raise
            try:
                with _translated_errors(self):
                    await transaction.commit()
            except BaseException:
                # PostgreSQL ends a transaction whose COMMIT fails; should the connection
                # still be in one (the COMMIT never got there), end it before the pool
                # hands the connection to anyone else.
                if not connection.is_closed() and connection.is_in_transaction():
                    with contextlib.suppress(Exception):
                        await connection.execute("ROLLBACK")
                raise
            self.write_succeeded()
            for callback in wrapped.callbacks or ():
                callback()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
