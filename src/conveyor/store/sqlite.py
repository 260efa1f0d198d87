"""SQLite driver: the embedded default.

sqlite3 blocks, so every connection lives on a thread of its own and the event loop only
awaits it. One connection writes (SQLite allows one writer at a time; an asyncio lock
queues our own writers instead of letting them spin in SQLite's busy handler) and a few
read beside it, which WAL allows. Other processes on the same file (the CLI, say) are
kept in line by `BEGIN IMMEDIATE` and the busy timeout.

A full disk (or the size limit `PRAGMA max_page_count`) and a read-only database surface
as `StorageFull` and `StorageReadOnly`. A write transaction that fails, at any statement
or at COMMIT, always leaves the writer outside a transaction, so the next write works as
soon as there is room again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
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

from conveyor.domain.errors import (
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    TransientDatabaseError,
)
from conveyor.domain.events import JsonValue
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

T = TypeVar("T")

log = logging.getLogger("conveyor.store")

BUSY_TIMEOUT_MS = 5_000
MIN_FREE_BYTES = 256 * 1024
"""Below this much free space on the database's file system, the server is not ready: a
write needs room in the WAL for every page it changes."""
PROBE_INTERVAL_SECONDS = 1.0
"""`check_writable` probes the file system and the database at most this often."""
WRITE_PROBE = "CREATE TABLE conveyor_write_probe (x)"
"""What `check_writable` tries, then rolls back: it takes the write lock and must allocate a
page, so a read-only database or one at its size limit refuses it; nothing is committed, so
no other connection ever sees it."""


def translate_error(error: sqlite3.Error) -> Exception | None:
    """The domain's error for what SQLite reported, or None for a plain bug."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return StorageFull(f"SQLite cannot write: {error}")
    if code == sqlite3.SQLITE_READONLY:
        return StorageReadOnly(f"SQLite cannot write: {error}")
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        isinstance(error, sqlite3.OperationalError)
        and ("locked" in str(error) or "busy" in str(error))
    ):
        return TransientDatabaseError(str(error))
    return None


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

    def seconds(self, value: Any) -> float:
        # SQLite stores a whole REAL (30.0) as an integer on disk and converts it back when
        # a SELECT reads it, but a RETURNING clause may hand over the integer (30): a job's
        # `timeout_seconds` would be 30 as created and 30.0 when read again.
        return float(value)


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
        except sqlite3.Error as error:
            translated = translate_error(error)
            if translated is None:
                raise
            if isinstance(translated, StorageUnavailable):
                self._database.write_failed(translated)
            raise translated from error

    def _leave_transaction(self) -> None:
        """On this connection's thread, after a failed write: end the transaction if SQLite
        has not already (a full disk may roll it back, a failed COMMIT may leave it open).
        If even ROLLBACK fails, the connection is replaced: never left inside a transaction."""
        connection = self._sqlite
        if not connection.in_transaction:
            return
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error as error:
            log.warning("ROLLBACK failed (%s); reopening the SQLite connection", error)
            connection.close()
            try:
                self._connection = self._connect()
            except sqlite3.Error as reopening:
                log.error("cannot reopen the SQLite connection: %s", reopening)

    async def leave_transaction(self) -> None:
        await self._call(self._leave_transaction)

    @property
    def in_transaction(self) -> bool:
        return self._sqlite.in_transaction

    @property
    def total_changes(self) -> int:
        """Rows this connection has changed since it opened: a write that changed none
        wrote nothing, and says nothing about whether writing works."""
        return self._sqlite.total_changes

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
            changes = self._sqlite.total_changes
            self._sqlite.execute("BEGIN IMMEDIATE")
            try:
                result = work(counted)
                self._sqlite.execute("COMMIT")
            except BaseException:
                self._leave_transaction()
                raise
            self._database.statements += counted.statements
            if self._sqlite.total_changes != changes:
                self._database.write_succeeded()
            return result

        return await self._call(transaction)

    def _probe_write(self) -> None:
        self._sqlite.execute("BEGIN IMMEDIATE")
        try:
            self._sqlite.execute(WRITE_PROBE)
        finally:
            self._leave_transaction()

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
        self._write_failure: tuple[float, StorageUnavailable] | None = None
        """The last write that failed for want of storage, and when, until one succeeds."""
        self._probed_at = -math.inf
        self._probe_failure: StorageUnavailable | None = None

    def write_failed(self, error: StorageUnavailable) -> None:
        self._write_failure = (time.monotonic(), error)

    def write_succeeded(self) -> None:
        self._write_failure = None

    async def check_writable(self) -> None:
        """Raise what would make a write fail now: a recent write's storage failure, a
        read-only or (nearly) full file system, or a database that refuses a write. The
        probes run at most once per `PROBE_INTERVAL_SECONDS`; meanwhile their last
        outcome stands (a write failing meanwhile is seen at once)."""
        if self._write_failure is not None:
            failed_at, error = self._write_failure
            if time.monotonic() - failed_at < WRITE_FAILURE_HOLD_SECONDS:
                raise error
        await self.ping()
        if time.monotonic() - self._probed_at >= PROBE_INTERVAL_SECONDS:
            self._probed_at = time.monotonic()
            try:
                await self._probe()
                self._probe_failure = None
            except StorageUnavailable as error:
                self._probe_failure = error
        if self._probe_failure is not None:
            raise self._probe_failure

    async def _probe(self) -> None:
        stats = await asyncio.to_thread(os.statvfs, self.path.parent)
        if stats.f_flag & os.ST_RDONLY:
            raise StorageReadOnly(f"the file system holding {self.path} is read-only")
        free_blocks = stats.f_bfree if os.geteuid() == 0 else stats.f_bavail
        if free_blocks * stats.f_frsize < MIN_FREE_BYTES:
            raise StorageFull(
                f"the file system holding {self.path} has {free_blocks * stats.f_frsize} bytes free"
            )
        async with self._write_lock:
            await self._writer._call(self._writer._probe_write)

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
            changes = self._writer.total_changes
            yield self._writer
            if self._writer.total_changes != changes:
                self.write_succeeded()

    def transaction(self) -> AsyncIteratorContext:
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[_ThreadConnection]:
        async with self._write_lock:
            changes = self._writer.total_changes
            await self._writer.execute("BEGIN IMMEDIATE")
            self._writer._callbacks = []
            try:
                yield self._writer
            except BaseException:
                self._writer._callbacks = None
                await asyncio.shield(self._writer.leave_transaction())
                raise
            # Shielded together: once COMMIT is sent, what follows it happens even if the
            # caller is cancelled (the committed events still reach the streams).
            await asyncio.shield(self._commit_then_callbacks(changes))

    async def _commit_then_callbacks(self, changes_before: int) -> None:
        callbacks, self._writer._callbacks = self._writer._callbacks or [], None
        try:
            await self._writer.execute("COMMIT")
        except BaseException:
            # A COMMIT that fails (a full disk, a deferred constraint) may leave the
            # transaction open: end it, or every later BEGIN would fail.
            await self._writer.leave_transaction()
            raise
        if self._writer.total_changes != changes_before:
            self.write_succeeded()
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
