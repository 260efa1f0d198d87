"""Wake-ups for claimers long-polling for work."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from uuid import UUID


class WorkSignal:
    """Claimers watch the workspaces they claim from (or every workspace) *before* they
    look for work and wait after finding none, so a job queued in between still wakes them:
    no lost wake-up, no blind sleep. Woken too when room may have appeared under a limit
    (a limited job finished, a limit changed)."""

    def __init__(self) -> None:
        self._watchers: defaultdict[UUID, set[asyncio.Event]] = defaultdict(set)
        self._everywhere: set[asyncio.Event] = set()

    @contextmanager
    def watch(self, workspaces: Sequence[UUID] | None) -> Iterator[asyncio.Event]:
        """Watch these workspaces (None: every workspace)."""
        event = asyncio.Event()
        if workspaces is None:
            self._everywhere.add(event)
        for workspace_id in workspaces or ():
            self._watchers[workspace_id].add(event)
        try:
            yield event
        finally:
            self._everywhere.discard(event)
            for workspace_id in workspaces or ():
                watchers = self._watchers.get(workspace_id)
                if watchers is not None:
                    watchers.discard(event)
                    if not watchers:
                        del self._watchers[workspace_id]

    def notify(self, workspace_id: UUID) -> None:
        for event in self._watchers.get(workspace_id, ()):
            event.set()
        for event in self._everywhere:
            event.set()

    def notify_all(self) -> None:
        """Wake everyone (the database came back: work may have been queued meanwhile)."""
        for watchers in self._watchers.values():
            for event in watchers:
                event.set()
        for event in self._everywhere:
            event.set()
