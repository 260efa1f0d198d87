"""SQLite driver: the embedded default.

sqlite3 blocks, so every connection lives on a thread of its own and the event loop only
awaits it. One connection writes (SQLite allows one writer at a time; an asyncio lock
queues our own writers instead of letting them spin in SQLite's busy handler) and a few
read beside it, which WAL allows. Other processes on the same file (the CLI, say) are
kept in line by `BEGIN IMMEDIATE` and the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from uuid import UUID

import orjson

from conveyor.domain.errors import TransientDatabaseError
from conveyor.domain.events import JsonValue
from conveyor.store.connection import (
    AsyncIteratorContext,
    Database,
    Json,
    Params,
    Row,
    ValueCodec,
)
from conveyor.store.queries import DialectName

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000


class BatchRunner(Protocol):
    async def __call__(self, work: Callable[[Executor], T], /) -> T: ...


Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


class SqliteCodec(ValueCodec):
    """SQLite keeps UUIDs as text, timestamps as REAL Unix seconds and JSON as text."""

    typed = False

    def uuid(self, value: Any) -> UUID:
        return UUID(value)

    def timestamp(self, value: Any) -> datetime:
        return datetime.fromtimestamp(value, UTC)

    def json(self, value: Any) -> JsonValue:
        return orjson.loads(value)


def _after(seconds: float) -> float:
    return time.time() + seconds


def _seconds_since(moment: float | None) -> float | None:
    return None if moment is None else time.time() - moment


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str | bytes):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, Json):
        return orjson.dumps(value.value).decode()
    if isinstance(value, list | tuple | frozenset | set):
        return orjson.dumps(
            [str(item) if isinstance(item, UUID) else item for item in value]
        ).decode()
    raise TypeError(f"cannot bind {type(value).__name__} to SQLite")


def encode_params(params: Params | None) -> dict[str, Any]:
    if not params:
        return {}
    return {name: _encode(value) for name, value in params.items()}


class Executor(Protocol):
    def execute(self, sql: str, params: Params = ..., /) -> sqlite3.Cursor: ...


class _CountingExecutor:
    """The connection, as a batch sees it: statements are counted for metrics."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.statements = 0

    def execute(self, sql: str, params: Params = (), /) -> sqlite3.Cursor:  # type: ignore[assignment]
        self.statements += 1
        return self._connection.execute(sql, params)


class _ThreadConnection:
    """One sqlite3 connection confined to one thread."""

    def __init__(self, database: SqliteDatabase, path: Path, synchronous: Synchronous) -> None:
        self._database = database
        self._callbacks: list[Callable[[], None]] | None = None
        """While a transaction is open: what to run once it commits."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sqlite")
        self._path = path
        self._synchronous = synchronous
        self._connection: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._connection = await self._call(self._connect)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        connection.row_factory = sqlite3.Row
        # The clock functions shared statements read (PostgreSQL's: migration 0011).
        connection.create_function("conveyor_now", 0, time.time, deterministic=False)
        connection.create_function("conveyor_after", 1, _after, deterministic=False)
        connection.create_function("conveyor_seconds_since", 1, _seconds_since, deterministic=False)
        connection.create_function(
            "conveyor_uuid4", 0, lambda: str(uuid.uuid4()), deterministic=False
        )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    async def _call(self, function: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, function)
        except sqlite3.OperationalError as error:
            if "locked" in str(error) or "busy" in str(error):
                raise TransientDatabaseError(str(error)) from error
            raise

    @property
    def _sqlite(self) -> sqlite3.Connection:
        assert self._connection is not None, "connection is not open"
        return self._connection

    def after_commit(self, callback: Callable[[], None]) -> None:
        if self._callbacks is None:
            callback()
        else:
            self._callbacks.append(callback)

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        bound = encode_params(params)
        self._database.statements += 1
        return await self._call(lambda: self._sqlite.execute(sql, bound).fetchall())

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params | None = None) -> None:
        bound = encode_params(params)
        self._database.statements += 1
        await self._call(lambda: self._sqlite.execute(sql, bound).fetchall())

    async def execute_counting(
        self, sql: str, params: Params | None = None, *, limit_seconds: float | None = None
    ) -> int:
        """`limit_seconds` does not apply: SQLite statements are not limited in time here."""
        bound = encode_params(params)
        self._database.statements += 1
        return await self._call(lambda: self._sqlite.execute(sql, bound).rowcount)

    async def run_transaction(self, work: Callable[[Executor], T]) -> T:
        """BEGIN IMMEDIATE, `work`, COMMIT — in one call on this connection's thread."""

        def transaction() -> T:
            counted = _CountingExecutor(self._sqlite)
            self._sqlite.execute("BEGIN IMMEDIATE")
            try:
                result = work(counted)
            except BaseException:
                self._sqlite.execute("ROLLBACK")
                raise
            self._sqlite.execute("COMMIT")
            self._database.statements += counted.statements
            return result

        return await self._call(transaction)

    async def close(self) -> None:
        if self._connection is not None:
            await self._call(self._sqlite.close)
            self._connection = None
        self._executor.shutdown(wait=True)


class SqliteDatabase(Database):
    dialect: DialectName = "sqlite"
    codec = SqliteCodec()

    def __init__(self, path: Path, *, readers: int = 4, synchronous: Synchronous = "FULL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._writer = _ThreadConnection(self, path, synchronous)
        self._write_lock = asyncio.Lock()
        self._readers = [_ThreadConnection(self, path, synchronous) for _ in range(readers)]
        self._idle_readers: asyncio.Queue[_ThreadConnection] = asyncio.Queue()

    async def open(self) -> None:
        await self._writer.open()
        for reader in self._readers:
            await reader.open()
            self._idle_readers.put_nowait(reader)

    def read(self) -> AsyncIteratorContext:
        return self._reader()

    @asynccontextmanager
    async def _reader(self) -> AsyncIterator[_ThreadConnection]:
        reader = await self._idle_readers.get()
        try:
            yield reader
        finally:
            self._idle_readers.put_nowait(reader)

    def write(self) -> AsyncIteratorContext:
        return self._locked_writer()

    @asynccontextmanager
    async def _locked_writer(self) -> AsyncIterator[_ThreadConnection]:
        async with self._write_lock:
            yield self._writer

    def transaction(self) -> AsyncIteratorContext:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_ThreadConnection]:
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            self._writer._callbacks = []
            try:
                yield self._writer
            except BaseException:
                self._writer._callbacks = None
                await asyncio.shield(self._writer.execute("ROLLBACK"))
                raise
            # Shielded together: once COMMIT is sent, what follows it happens even if the
            # caller is cancelled (the committed events still reach the streams).
            await asyncio.shield(self._commit_then_callbacks())

    async def _commit_then_callbacks(self) -> None:
        callbacks, self._writer._callbacks = self._writer._callbacks or [], None
        await self._writer.execute("COMMIT")
        for callback in callbacks:
            callback()

    def batch(self) -> AbstractAsyncContextManager[BatchRunner]:
        """Holds the write lock; yields a runner for one function that does a whole
        transaction on the writer's thread (see store/sqlite_jobs.py)."""
        return self._batch()

    @asynccontextmanager
    async def _batch(self) -> AsyncIterator[BatchRunner]:
        async with self._write_lock:
            yield self._writer.run_transaction

    async def close(self) -> None:
        await self._writer.close()
        for reader in self._readers:
            await reader.close()
