"""Wake-ups for claimers long-polling for work in a workspace."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID


class WorkSignal:
    """Claimers watch a workspace *before* they look for work and wait after finding none,
    so a job queued in between still wakes them: no lost wake-up, no blind sleep."""

    def __init__(self) -> None:
        self._watchers: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)

    @contextmanager
    def watch(self, workspace_id: UUID) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        watchers = self._watchers[workspace_id]
        watchers.add(event)
        try:
            yield event
        finally:
            watchers.discard(event)
            if not watchers:
                self._watchers.pop(workspace_id, None)

    def notify(self, workspace_id: UUID) -> None:
        for event in self._watchers.get(workspace_id, ()):
            event.set()

    def notify_all(self) -> None:
        """Wake everyone (the database came back: work may have been queued meanwhile)."""
        for watchers in self._watchers.values():
            for event in watchers:
                event.set()
