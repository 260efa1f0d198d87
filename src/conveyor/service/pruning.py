"""The pruner: deletes finished jobs (with their steps and events) once they are older than
their workspace's retention.

Every server runs it; one prunes at a time per database (store/lifetime.py says how). A
pass goes through every workspace and final status not kept forever, in batches of at most
`batch_size` jobs, each its own short transaction: claims, creates and streams never wait
on more than one batch, and on SQLite the write lock is given up between batches, so the
writers queued meanwhile go first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Protocol
from uuid import UUID

from conveyor.domain.errors import OUTAGES
from conveyor.domain.lifetime import Retention, history_age_seconds, prune_rules
from conveyor.domain.status import JobStatus
from conveyor.store import Store
from conveyor.store.lifetime import WorkspaceRetention

log = logging.getLogger("conveyor.pruner")

DEFAULT_BATCH_SIZE: Final = 500


class PruneObserver(Protocol):
    def jobs_pruned(self, workspace: str, status: str, count: int) -> None: ...


@dataclass(frozen=True, slots=True)
class PrunedCount:
    workspace: str
    status: JobStatus
    jobs: int
    events: int = 0


@dataclass
class PruneReport:
    """What one pass deleted (or, dry, would delete), per workspace and final status."""

    counts: list[PrunedCount] = field(default_factory=list)
    dry_run: bool = False
    schedule_runs: int = 0
    """Entries of schedules' history deleted (kept as long as the longest retention)."""
    busy: bool = False
    """Another server's pruner was at work: this pass left the rest to it."""
    seconds: float = 0.0

    @property
    def jobs(self) -> int:
        return sum(count.jobs for count in self.counts)

    @property
    def events(self) -> int:
        return sum(count.events for count in self.counts)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        if not self.counts:
            text = f"nothing to delete ({self.seconds:.2f}s)"
        else:
            parts = ", ".join(
                f"{c.workspace} {c.status.value.lower()} {c.jobs}" for c in self.counts
            )
            events = "" if self.dry_run else f" and {self.events} events"
            text = f"{verb} {self.jobs} jobs{events} in {self.seconds:.2f}s ({parts})"
        if self.schedule_runs:
            text += f"; {self.schedule_runs} schedule runs"
        if self.busy:
            text += "; another server is pruning, the rest is left to it"
        return text


class Pruner:
    def __init__(
        self,
        store: Store,
        defaults: Retention,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        observer: PruneObserver | None = None,
    ) -> None:
        self.lifetime = store.lifetime
        self.defaults = defaults
        self.batch_size = batch_size
        self.observer = observer

    async def run_once(
        self, *, workspace_id: UUID | None = None, dry_run: bool = False
    ) -> PruneReport:
        """One pass over every workspace (or the one given): delete what its retention
        lets go, or with `dry_run` count it."""
        started = time.monotonic()
        report = PruneReport(dry_run=dry_run)
        for workspace in await self.lifetime.workspaces():
            if workspace_id is not None and workspace.id != workspace_id:
                continue
            if not await self._workspace(workspace, report):
                report.busy = True
                break
        report.seconds = time.monotonic() - started
        return report

    async def _workspace(self, workspace: WorkspaceRetention, report: PruneReport) -> bool:
        """False when another server's pruner holds the lock."""
        retention = workspace.settings.effective_retention(self.defaults)
        for rule in prune_rules(retention):
            if report.dry_run:
                found = await self.lifetime.count_prunable(workspace.id, rule)
                if found:
                    report.counts.append(PrunedCount(workspace.slug, rule.status, found))
                continue
            jobs = events = 0
            busy = False
            while True:
                started = time.monotonic()
                batch = await self.lifetime.prune_batch(workspace.id, rule, self.batch_size)
                if batch is None:
                    busy = True
                    break
                jobs += batch.jobs
                events += batch.events
                if batch.jobs and self.observer is not None:
                    self.observer.jobs_pruned(workspace.slug, rule.status.value, batch.jobs)
                if batch.jobs < self.batch_size:
                    break
                # Let the writers waiting on the write lock go first (on SQLite, also those
                # of other processes: see SqliteLifetimeStore).
                pause = self.lifetime.pause_between_batches * (time.monotonic() - started)
                await asyncio.sleep(pause)
            if jobs:
                report.counts.append(PrunedCount(workspace.slug, rule.status, jobs, events))
            if busy:
                return False
        history_age = history_age_seconds(retention)
        if report.dry_run or history_age is None:
            return True
        while True:
            runs = await self.lifetime.prune_schedule_runs(
                workspace.id, history_age, self.batch_size
            )
            if runs is None:
                return False
            report.schedule_runs += runs
            if runs < self.batch_size:
                return True

    async def run_forever(self, interval_seconds: float) -> None:
        """A pass every `interval_seconds` (the first right away), a log line each;
        database outages are waited out, never fatal."""
        while True:
            try:
                report = await self.run_once()
                log.info("pruner: %s", report.summary())
            except OUTAGES as error:
                log.warning("pruner: database unavailable (%s); will try again", error)
            except Exception:
                log.exception("pruner failed; will try again")
            await asyncio.sleep(interval_seconds)
