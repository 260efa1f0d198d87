"""Operator actions on many jobs at once: cancel or retry every job a filter matches.

Each job changes through its own guarded transition with its events, exactly as the single
routes change it (the domain's `decide_cancel`; the service's `retry_job`): nothing is half
done for any job. A job that changed between the selection and its turn is skipped, not
decided again, and not counted as changed. One request changes at most `BULK_LIMIT` jobs
(newest first) and says whether more remain; the caller repeats, passing the cursor it was
given, until none do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from conveyor.domain import jobs as rules
from conveyor.domain.errors import IdempotencyConflict, JobConflict
from conveyor.domain.job_lists import (
    BULK_LIMIT,
    BulkAction,
    JobFilter,
    ListCursor,
    Total,
    bulk_selection,
)
from conveyor.domain.jobs import Job
from conveyor.service.jobs import JobService

Change = Callable[[Job], Awaitable[bool]]
"""Changes one selected job through its own guarded transition; True if it did."""


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    action: BulkAction
    matched: int
    """Jobs this request selected (at most `limit`); with `dry_run`, the jobs a request
    would select now."""
    changed: int
    """Of those, the jobs it changed (the rest had changed meanwhile)."""
    remaining: Total
    """Jobs the action could still change, after this request."""
    limit: int
    next_cursor: ListCursor | None
    """Where the next request should go on from, when this one reached its limit."""
    dry_run: bool = False

    @property
    def limit_reached(self) -> bool:
        return self.next_cursor is not None

    def as_json(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "matched": self.matched,
            "changed": self.changed,
            "remaining": self.remaining.count,
            "remaining_is_estimate": self.remaining.is_estimate,
            "limit": self.limit,
            "limit_reached": self.limit_reached,
            "next_cursor": None if self.next_cursor is None else self.next_cursor.encode(),
            "dry_run": self.dry_run,
        }


class BulkActions:
    def __init__(self, jobs: JobService, *, limit: int = BULK_LIMIT) -> None:
        self.jobs = jobs
        self.lists = jobs.store.lists
        self.limit = limit

    async def cancel(
        self,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        everything: bool,
        actor: str,
        reason: str | None = None,
        cursor: ListCursor | None = None,
        dry_run: bool = False,
    ) -> BulkOutcome:
        async def cancel_one(job: Job) -> bool:
            try:
                decided = rules.decide_cancel(job, actor, reason)
            except JobConflict:
                return False
            stored = await self.jobs.jobs.apply_change(workspace_id, decided)
            if stored is None:
                return False  # it changed since it was selected: skipped
            self.jobs.observer.job_settled(stored)
            return True

        return await self._run(
            BulkAction.CANCEL, workspace_id, job_filter, everything, cursor, dry_run, cancel_one
        )

    async def retry(
        self,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        everything: bool,
        actor: str,
        cursor: ListCursor | None = None,
        dry_run: bool = False,
    ) -> BulkOutcome:
        async def retry_one(job: Job) -> bool:
            try:
                _, created = await self.jobs.retry_job(workspace_id, job.id, actor)
            except (JobConflict, IdempotencyConflict):
                return False
            return created  # not created: a retry of it existed already

        return await self._run(
            BulkAction.RETRY, workspace_id, job_filter, everything, cursor, dry_run, retry_one
        )

    async def _run(
        self,
        action: BulkAction,
        workspace_id: UUID,
        job_filter: JobFilter,
        everything: bool,
        cursor: ListCursor | None,
        dry_run: bool,
        change: Change,
    ) -> BulkOutcome:
        selection = bulk_selection(job_filter, everything=everything)
        if dry_run:
            remaining = await self.lists.count_for_action(workspace_id, action, selection)
            return BulkOutcome(
                action,
                min(remaining.count, self.limit),
                0,
                remaining,
                self.limit,
                None,
                dry_run=True,
            )
        selected = await self.lists.for_action(
            workspace_id, action, selection, cursor=cursor, limit=self.limit
        )
        changed = 0
        for job in selected:
            if await change(job):
                changed += 1
        remaining = await self.lists.count_for_action(workspace_id, action, selection)
        last = selected[-1] if len(selected) == self.limit else None
        return BulkOutcome(
            action,
            len(selected),
            changed,
            remaining,
            self.limit,
            None if last is None else ListCursor(last.created_at, last.id),
        )
