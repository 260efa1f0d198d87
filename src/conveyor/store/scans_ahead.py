"""Key scans read ahead (PostgreSQL): as a claim that started every job it asked for ends,
the key scans its scope's next claim will make (`claimable_keys` of each keyed workspace
of its plan, from where this one's turns stopped) start, in one task on a connection of
its own, so the next claim finds its keys read instead of waiting for them: a draining
worker claims again at once, and the scans are on its critical path.

The next claim takes them before it holds a connection (the scans may wait for one), and
only if it starts where they did in every keyed workspace, asks for no more keys than they
read (or they read every key), and they are at most `SCAN_AHEAD_SECONDS` old; else it
scans afresh. A newer scan of the scope, keyed jobs created in one of its workspaces
through this store, and a claim that started fewer jobs than it asked drop them. A claim
that took them and started fewer than it asked looks again at once, with fresh scans: a
key they missed (jobs another server created, or that came due since) is found then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from uuid import UUID

from conveyor.store.claims import PLAN_REUSE_SECONDS, KeyScan, ScopeKey

SCAN_AHEAD_SECONDS = PLAN_REUSE_SECONDS
"""How long scans read ahead serve the next claim of their scope."""
_SCOPES_KEPT = 1_000
"""Scopes whose scans read ahead are kept at once; beyond, the oldest go."""

Scans = dict[UUID, KeyScan]


@dataclass(frozen=True, slots=True)
class _Ahead:
    afters: Mapping[UUID, str]
    most: int
    started: float
    scans: asyncio.Future[Scans]


def _retrieved(scans: asyncio.Future[Scans]) -> None:
    """Scans no claim took still have their outcome looked at (asyncio logs one never
    read); failed ones only mean the next claim scans afresh."""
    if not scans.cancelled():
        scans.exception()


class ScansAhead:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ahead: dict[ScopeKey, _Ahead] = {}
        self._running: set[asyncio.Future[Scans]] = set()
        self._closed = False
        self._monotonic = monotonic

    def start(
        self, scope: ScopeKey, afters: Mapping[UUID, str], most: int, scans: Awaitable[Scans]
    ) -> None:
        """Read `scans` (up to `most` keys of each workspace, after `afters`) for the
        scope's next claim; scans read ahead before for it are dropped, and end unread."""
        future = asyncio.ensure_future(scans)
        future.add_done_callback(_retrieved)
        if self._closed:
            future.cancel()
            return
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        self._ahead.pop(scope, None)
        self._ahead[scope] = _Ahead(dict(afters), most, self._monotonic(), future)
        while len(self._ahead) > _SCOPES_KEPT:
            del self._ahead[next(iter(self._ahead))]

    async def take(self, scope: ScopeKey, afters: Mapping[UUID, str], most: int) -> Scans | None:
        """The scans read ahead for this claim, up to `most` keys each; None: scan afresh."""
        ahead = self._ahead.pop(scope, None)
        if ahead is None or ahead.afters != afters:
            return None
        if self._monotonic() - ahead.started > SCAN_AHEAD_SECONDS:
            return None
        try:
            scans = await ahead.scans
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the claim itself is being cancelled
            return None  # the store closed
        except Exception:  # the connection went, the pool closed: scanning afresh says why
            return None
        if most > ahead.most and any(
            len(scan.later) + len(scan.earlier) >= ahead.most for scan in scans.values()
        ):
            return None  # they read fewer keys than this claim wants, and there are more
        return {workspace_id: scan.first(most) for workspace_id, scan in scans.items()}

    def forget(self, workspace_id: UUID) -> None:
        """Keyed jobs came to the workspace: its next claims scan afresh."""
        for scope in [
            scope for scope, ahead in self._ahead.items() if workspace_id in ahead.afters
        ]:
            del self._ahead[scope]

    def forget_scope(self, scope: ScopeKey) -> None:
        """A claim of the scope started fewer jobs than it asked: its next scans afresh."""
        self._ahead.pop(scope, None)

    async def close(self) -> None:
        """The store closes: every scan still running stops, and no other starts."""
        self._closed = True
        self._ahead.clear()
        running = list(self._running)
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)
