"""The overview of a workspace, and the record of which workers are around.

Workers are recorded when they claim (with the job types they serve and how long they may
go unseen) or heartbeat, at most once per WORKER_SEEN_EVERY per worker per process unless
what they serve changed, so busy workers add no write per request."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from conveyor.store import Store
from conveyor.store.stats import Overview

WORKER_SEEN_EVERY = 5.0
OVERVIEW_CACHE_SECONDS = 2.0
UNSEEN_GRACE_SECONDS = 15.0
"""A worker is seen at least every lease (heartbeats) or claim wait (long-polls); this much
later than that, it counts as stopped."""


class WorkerRegistry(Protocol):
    """Told when a worker shows itself: the overview's list of workers listens here."""

    async def claiming(
        self,
        workspace_id: UUID,
        worker_id: str,
        types: Sequence[str] | None,
        *,
        lease_seconds: float,
        wait_seconds: float,
    ) -> None: ...

    async def heartbeat(self, workspace_id: UUID, worker_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class UnservedType:
    """Jobs of a type that could run now but that no live worker will claim."""

    type: str
    queued: int
    """How many: queued and due (jobs whose run_at is still ahead are not counted)."""


def unserved_types(overview: Overview) -> list[UnservedType]:
    """The types with jobs claimable now that no active worker serves (a `command` job
    where no worker allows them, a type nobody has a handler for, workers that all
    stopped). Jobs not due yet are left out: nothing is wrong until they come due, and a
    worker may well start by then."""
    return [
        UnservedType(due.type, due.count)
        for due in overview.due
        if not any(worker.serves(due.type) for worker in overview.workers)
    ]


class StatsService:
    def __init__(self, store: Store) -> None:
        self._stats = store.stats
        self._seen: dict[tuple[UUID, str], tuple[float, tuple[str, ...] | None, float]] = {}
        self._overviews: dict[UUID, tuple[float, Overview]] = {}

    async def claiming(
        self,
        workspace_id: UUID,
        worker_id: str,
        types: Sequence[str] | None,
        *,
        lease_seconds: float,
        wait_seconds: float,
    ) -> None:
        now = time.monotonic()
        key = (workspace_id, worker_id)
        served = None if types is None else tuple(sorted(types))
        stale_after = max(lease_seconds, wait_seconds) + UNSEEN_GRACE_SECONDS
        last = self._seen.get(key)
        unchanged = last is not None and last[1:] == (served, stale_after)
        if unchanged and last is not None and now - last[0] < WORKER_SEEN_EVERY:
            return
        self._remember(key, (now, served, stale_after))
        await self._stats.record_worker_claiming(workspace_id, worker_id, served, stale_after)

    async def heartbeat(self, workspace_id: UUID, worker_id: str) -> None:
        now = time.monotonic()
        key = (workspace_id, worker_id)
        last = self._seen.get(key)
        if last is not None and now - last[0] < WORKER_SEEN_EVERY:
            return
        self._remember(key, (now, *(last[1:] if last else (None, 0.0))))
        await self._stats.record_worker_heartbeat(workspace_id, worker_id)

    def _remember(
        self, key: tuple[UUID, str], seen: tuple[float, tuple[str, ...] | None, float]
    ) -> None:
        if len(self._seen) > 50_000:
            self._seen.clear()
        self._seen[key] = seen

    async def overview(self, workspace_id: UUID) -> Overview:
        """Cached for a moment: a dashboard left open polls it, many may be open at once."""
        now = time.monotonic()
        cached = self._overviews.get(workspace_id)
        if cached is not None and now - cached[0] < OVERVIEW_CACHE_SECONDS:
            return cached[1]
        overview = await self._stats.overview(workspace_id)
        self._overviews[workspace_id] = (now, overview)
        return overview
