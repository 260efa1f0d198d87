"""The overview of a workspace, and the record of which workers are around.

Workers are recorded when they claim or heartbeat, at most once per WORKER_SEEN_EVERY per
worker per process, so busy workers add no write per request."""

from __future__ import annotations

import time
from uuid import UUID

from conveyor.store import Store
from conveyor.store.stats import Overview

WORKER_SEEN_EVERY = 5.0
OVERVIEW_CACHE_SECONDS = 2.0


class StatsService:
    def __init__(self, store: Store) -> None:
        self._stats = store.stats
        self._seen: dict[tuple[UUID, str], float] = {}
        self._overviews: dict[UUID, tuple[float, Overview]] = {}

    async def worker_seen(self, workspace_id: UUID, worker_id: str) -> None:
        now = time.monotonic()
        key = (workspace_id, worker_id)
        if now - self._seen.get(key, -WORKER_SEEN_EVERY) < WORKER_SEEN_EVERY:
            return
        self._seen[key] = now
        if len(self._seen) > 50_000:
            self._seen.clear()
        await self._stats.record_workers_seen(workspace_id, [worker_id])

    async def overview(self, workspace_id: UUID) -> Overview:
        """Cached for a moment: a dashboard left open polls it, many may be open at once."""
        now = time.monotonic()
        cached = self._overviews.get(workspace_id)
        if cached is not None and now - cached[0] < OVERVIEW_CACHE_SECONDS:
            return cached[1]
        overview = await self._stats.overview(workspace_id)
        self._overviews[workspace_id] = (now, overview)
        return overview
