"""One LISTEN connection per server process, fanning PostgreSQL notifications out locally:
`conveyor_jobs` wakes claimers, `conveyor_events` tells the event hub what to fetch.

The connection is kept apart from the pool and re-established with backoff whenever it
drops (a restart, a network cut). Notifications sent while it was down are lost, so
after every reconnect everyone is told to look again (claimers claim, streams catch up
by seq)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

import asyncpg

from conveyor.bus.hub import EventNotice
from conveyor.bus.work import WorkSignal
from conveyor.domain.backoff import Backoff

log = logging.getLogger("conveyor.bus")

JOBS_CHANNEL = "conveyor_jobs"
EVENTS_CHANNEL = "conveyor_events"
KEYS_CHANNEL = "conveyor_keys"
CHECK_INTERVAL_SECONDS = 5.0


def parse_event_notice(payload: str) -> list[EventNotice]:
    workspace_text, *items = payload.split(" ")
    workspace_id = UUID(workspace_text)
    notices = []
    for item in items:
        job_text, first, last = item.split(":")
        notices.append(EventNotice(workspace_id, UUID(job_text), int(first), int(last)))
    return notices


class PostgresListener:
    def __init__(
        self,
        dsn: str,
        work_signal: WorkSignal,
        *,
        on_events: Callable[[list[EventNotice]], None] | None = None,
        on_key_change: Callable[[UUID | None], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._work_signal = work_signal
        self._on_events = on_events
        self._on_key_change = on_key_change
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="postgres-listener")
        # Serve even if the database is down at start; the listener keeps trying.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_jobs(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._work_signal.notify(UUID(payload))
        except ValueError:
            log.warning("ignoring malformed %s notification %r", JOBS_CHANNEL, payload)

    def _on_keys(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if self._on_key_change is None:
            return
        try:
            self._on_key_change(UUID(payload))
        except ValueError:
            self._on_key_change(None)

    def _on_events_notification(
        self, _connection: Any, _pid: int, _channel: str, payload: str
    ) -> None:
        if self._on_events is None:
            return
        try:
            notices = parse_event_notice(payload)
        except ValueError:
            log.warning("ignoring malformed %s notification %r", EVENTS_CHANNEL, payload[:200])
            return
        self._on_events(notices)

    async def _run(self) -> None:
        backoff = Backoff(0.1, 5.0)
        delay = backoff.next()
        first = True
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(JOBS_CHANNEL, self._on_jobs)
                await connection.add_listener(EVENTS_CHANNEL, self._on_events_notification)
                await connection.add_listener(KEYS_CHANNEL, self._on_keys)
                self.connected.set()
                backoff.reset()
                if not first:
                    self.reconnects += 1
                    log.info("listening to PostgreSQL again")
                    self._work_signal.notify_all()
                    if self._on_key_change is not None:
                        self._on_key_change(None)  # announcements may have been missed
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                first = False
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), CHECK_INTERVAL_SECONDS)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=10)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning(
                    "PostgreSQL listener disconnected (%s); retrying in %.1fs", error, delay
                )
            finally:
                self.connected.clear()
                if connection is not None and not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(connection.close(), 2)
            await asyncio.sleep(delay)
            delay = backoff.next()
