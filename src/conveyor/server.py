"""The runtime of one server process: the store, the services, and the background tasks
(lease reaper) that keep the queue healthy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from conveyor.bus.work import WorkSignal
from conveyor.config import Settings
from conveyor.domain.errors import ConveyorError, Unavailable
from conveyor.service.jobs import JobService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.connection import TransientDatabaseError
from conveyor.store.migrate import current_revision, head_revision, upgrade
from conveyor.store.urls import DatabaseURL

log = logging.getLogger("conveyor.server")


class SchemaOutOfDate(ConveyorError):
    pass


def prepare_schema(url: DatabaseURL, *, migrate: bool) -> None:
    """Migrate when asked to; otherwise refuse to serve a database behind the code."""
    if migrate:
        upgrade(url)
        return
    current = current_revision(url)
    if current != head_revision():
        raise SchemaOutOfDate(
            f"the database {url.redacted()} is at schema revision {current or 'none'}, "
            f"this Conveyor needs {head_revision()}: run `conveyor migrate` or serve with "
            "--migrate"
        )


@dataclass
class Runtime:
    settings: Settings
    store: Store
    jobs: JobService
    workspaces: WorkspaceService
    work_signal: WorkSignal
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        url = DatabaseURL.parse(settings.database_url)
        store = await open_store(
            url, pool_size=settings.pool_size, sqlite_synchronous=settings.sqlite_synchronous
        )
        work_signal = WorkSignal()
        runtime = cls(
            settings=settings,
            store=store,
            jobs=JobService(
                store,
                work_signal=work_signal,
                poll_interval=settings.claim_poll_interval_seconds,
            ),
            workspaces=WorkspaceService(store),
            work_signal=work_signal,
        )
        runtime.tasks.append(asyncio.create_task(runtime._reap_forever(), name="lease-reaper"))
        return runtime

    async def _reap_forever(self) -> None:
        """Take back expired leases, in every server process (the reaper is safe to run
        many times at once). Database outages are waited out, never fatal."""
        while True:
            try:
                while len(await self.jobs.expire_leases(limit=500)) == 500:
                    pass
            except (Unavailable, TransientDatabaseError) as error:
                log.warning("lease reaper: database unavailable (%s); will try again", error)
            except Exception:
                log.exception("lease reaper failed; will try again")
            await asyncio.sleep(self.settings.reaper_interval_seconds)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()
