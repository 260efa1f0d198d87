"""The scheduler every server runs: it sleeps until the earliest `next_run_at` of any
schedule, fires what is due (see `schedules.py` for why each tick fires once however many
servers do this), and sleeps again.

A schedule created or changed through this server wakes it at once (`wake`). Changes made
through another server are seen when this one next looks: at its next due time, or within
`recheck_seconds` at the latest. Either way the tick fires on time, since the server that
made the change has armed its own timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from conveyor.domain.errors import OUTAGES
from conveyor.service.schedules import ScheduleService

log = logging.getLogger("conveyor.scheduler")

BATCH: Final = 100
"""Schedules handled per look at the database."""
MAX_ROUNDS: Final = 100
"""Looks in a row while schedules stay due, before the loop yields to its sleep."""


class Scheduler:
    def __init__(
        self,
        schedules: ScheduleService,
        *,
        recheck_seconds: float = 10.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.schedules = schedules
        self.recheck_seconds = recheck_seconds
        self.retry_seconds = retry_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look now: a schedule changed, or (in tests) the clock moved."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled. Database outages are waited out, never fatal."""
        while True:
            try:
                delay = await self.run_once()
            except OUTAGES as error:
                log.warning("scheduler: database unavailable (%s); will try again", error)
                delay = self.retry_seconds
            except Exception:
                log.exception("scheduler failed; will try again")
                delay = self.retry_seconds
            await self._sleep(delay)

    async def run_once(self) -> float:
        """Fire everything due; how long to sleep before something may next be due. Idle,
        a look costs two statements: the clock and the outlook."""
        clock = self.schedules.clock
        for _ in range(MAX_ROUNDS):
            now = await clock.now()
            next_run, firing = await self.schedules.outlook()
            if not firing and (next_run is None or next_run > now):
                if next_run is None:
                    return self.recheck_seconds
                return min((next_run - now).total_seconds(), self.recheck_seconds)
            if await self.schedules.run_due(now, BATCH) == 0:
                # Due, yet nothing moved here: another server is on it, or it fails
                # (logged). Look again soon, without spinning.
                return self.retry_seconds
        return 0.0

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
