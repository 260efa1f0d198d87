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
from conveyor.domain.errors import IdempotencyConflict, JobConflict, JobNotFound
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


@dataclass(frozen=True, slots=True)
class BulkPlan:
    """The jobs one bulk request works on, as they were read when selected."""

    action: BulkAction
    workspace_id: UUID
    selection: JobFilter
    jobs: list[Job]


class BulkActions:
    def __init__(self, jobs: JobService, *, limit: int = BULK_LIMIT) -> None:
        self.jobs = jobs
        self.lists = jobs.store.lists
        self.limit = limit

    async def run(
        self,
        action: BulkAction,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        everything: bool,
        actor: str,
        reason: str | None = None,
        cursor: ListCursor | None = None,
        dry_run: bool = False,
    ) -> BulkOutcome:
        """One request's worth: select, then change each selected job (or, `dry_run`,
        count what matches)."""
        if dry_run:
            return await self.count(action, workspace_id, job_filter, everything=everything)
        plan = await self.plan(
            action, workspace_id, job_filter, everything=everything, cursor=cursor
        )
        return await self.apply(plan, actor=actor, reason=reason)

    async def count(
        self, action: BulkAction, workspace_id: UUID, job_filter: JobFilter, *, everything: bool
    ) -> BulkOutcome:
        selection = bulk_selection(job_filter, everything=everything)
        remaining = await self.lists.count_for_action(workspace_id, action, selection)
        matched = min(remaining.count, self.limit)
        return BulkOutcome(action, matched, 0, remaining, self.limit, None, dry_run=True)

    async def plan(
        self,
        action: BulkAction,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        everything: bool,
        cursor: ListCursor | None = None,
    ) -> BulkPlan:
        """The next jobs (newest first, after `cursor`) the action may change: the
        filter's jobs in a status it applies to (and, to retry, not run again yet)."""
        selection = bulk_selection(job_filter, everything=everything)
        selected = await self.lists.for_action(
            workspace_id, action, selection, cursor=cursor, limit=self.limit
        )
        return BulkPlan(action, workspace_id, selection, selected)

    async def apply(self, plan: BulkPlan, *, actor: str, reason: str | None = None) -> BulkOutcome:
        """Change each planned job through its own guarded transition, as it was read: a
        job that changed since is skipped."""
        if plan.action is BulkAction.CANCEL:
            change = self._canceller(plan.workspace_id, actor, reason)
        else:
            change = self._retrier(plan.workspace_id, actor)
        changed = 0
        for job in plan.jobs:
            if await change(job):
                changed += 1
        remaining = await self.lists.count_for_action(
            plan.workspace_id, plan.action, plan.selection
        )
        last = plan.jobs[-1] if len(plan.jobs) == self.limit else None
        return BulkOutcome(
            plan.action,
            len(plan.jobs),
            changed,
            remaining,
            self.limit,
            None if last is None else ListCursor(last.created_at, last.id),
        )

    def _canceller(self, workspace_id: UUID, actor: str, reason: str | None) -> Change:
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

        return cancel_one

    def _retrier(self, workspace_id: UUID, actor: str) -> Change:
        async def retry_one(job: Job) -> bool:
            try:
                _, created = await self.jobs.retry_job(workspace_id, job.id, actor)
            except (JobConflict, IdempotencyConflict, JobNotFound):
                return False
            return created  # not created: a retry of it existed already

        return retry_one
