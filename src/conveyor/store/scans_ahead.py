"""Key scans read ahead (PostgreSQL): as a claim that started jobs ends, the scan of each
keyed workspace its scope's next claim will make (`claimable_keys`, from where this one's
turns stopped) starts on a connection of its own, so the next claim finds its keys read
instead of waiting for them. A draining worker claims again at once, and the scan is on
its critical path: two or three milliseconds per claim over a thousand keys.

The next claim takes a scan read ahead only if it starts where the scan did, asks for no
more keys than it read (or it read every key), and it is at most `SCAN_AHEAD_SECONDS`
old; else it scans afresh. Jobs created in a workspace through this store drop its scans
read ahead; a key whose first jobs come due another way (a retry's backoff, a job
scheduled for later, another server's jobs) waits at most that long for its turn, as a
workspace does for a claim's plan (`PLAN_REUSE_SECONDS`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from uuid import UUID

from conveyor.store.claims import PLAN_REUSE_SECONDS, KeyScan, ScopeKey

SCAN_AHEAD_SECONDS = PLAN_REUSE_SECONDS
"""How long a scan read ahead serves the next claim of its scope."""
_KEPT = 1_000
"""Scans read ahead kept at once (one per scope and keyed workspace); beyond, the oldest
goes."""


@dataclass(frozen=True, slots=True)
class _Ahead:
    after: str
    most: int
    started: float
    scan: asyncio.Future[KeyScan]


def _retrieved(scan: asyncio.Future[KeyScan]) -> None:
    """A scan no claim took still has its outcome looked at (asyncio logs one never read);
    a failed one only means the next claim scans afresh."""
    if not scan.cancelled():
        scan.exception()


class ScansAhead:
    def __init__(self) -> None:
        self._ahead: dict[tuple[ScopeKey, UUID], _Ahead] = {}

    def start(
        self, scope: ScopeKey, workspace_id: UUID, after: str, most: int, scan: Awaitable[KeyScan]
    ) -> None:
        """Read `scan` (of up to `most` keys after `after`) for the scope's next claim."""
        future = asyncio.ensure_future(scan)
        future.add_done_callback(_retrieved)
        key = (scope, workspace_id)
        self._ahead.pop(key, None)
        self._ahead[key] = _Ahead(after, most, time.monotonic(), future)
        while len(self._ahead) > _KEPT:
            del self._ahead[next(iter(self._ahead))]

    async def take(
        self, scope: ScopeKey, workspace_id: UUID, after: str, most: int
    ) -> KeyScan | None:
        """The scan read ahead for this claim, up to `most` keys; None: scan afresh."""
        ahead = self._ahead.pop((scope, workspace_id), None)
        if ahead is None or ahead.after != after:
            return None
        if time.monotonic() - ahead.started > SCAN_AHEAD_SECONDS:
            return None
        try:
            scan = await ahead.scan
        except Exception:
            return None
        if most > ahead.most and len(scan.later) + len(scan.earlier) >= ahead.most:
            return None  # it read fewer keys than this claim wants, and there are more
        return scan.first(most)

    def forget(self, workspace_id: UUID) -> None:
        """Jobs came to the workspace: its next claims scan afresh."""
        for key in [key for key in self._ahead if key[1] == workspace_id]:
            del self._ahead[key]

    def forget_scope(self, scope: ScopeKey) -> None:
        """A claim of the scope started nothing: its next scans afresh."""
        for key in [key for key in self._ahead if key[0] == scope]:
            del self._ahead[key]
