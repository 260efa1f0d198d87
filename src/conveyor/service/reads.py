"""Reading jobs, their steps and events, and where a workspace's stream stands."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from conveyor.domain.events import Event, StreamPosition, WorkspaceEventsPage
from conveyor.domain.job_lists import JobFilter, ListCursor
from conveyor.domain.jobs import Job
from conveyor.domain.lifetime import resume_position
from conveyor.domain.steps import Step
from conveyor.service.core import JobServiceCore

MAX_LIST_LIMIT = 200


def page_count(total: int, limit: int) -> int:
    """How many pages of `limit` a list of `total` fills (0 for an empty list)."""
    return (total + limit - 1) // limit if total else 0


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[Job]
    total: int
    page: int | None
    """The page number asked for; None when the page was asked for by cursor."""
    limit: int
    total_is_estimate: bool = False
    """The total passed the exact count's bound (`EXACT_TOTAL_LIMIT`): it is an estimate."""
    next_cursor: ListCursor | None = None
    """Where the next page starts; None when no job follows this page."""

    @property
    def total_pages(self) -> int:
        return page_count(self.total, self.limit)


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: Job
    steps: list[Step]
    events: list[Event]


class JobReads(JobServiceCore):
    async def get_job(self, workspace_id: UUID, job_id: UUID) -> Job:
        return await self.require_job(workspace_id, job_id)

    async def get_job_detail(
        self, workspace_id: UUID, job_id: UUID, *, event_limit: int = 1000
    ) -> JobDetail:
        job = await self.require_job(workspace_id, job_id)
        steps = await self.jobs.list_steps(job_id)
        job_events = await self.jobs.list_events(job_id, after_seq=0, limit=event_limit)
        return JobDetail(job, steps, job_events)

    async def list_jobs(
        self,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        page: int = 1,
        limit: int,
        cursor: ListCursor | None = None,
    ) -> Page:
        """A page of the list, newest first: the `page`-th, or the one after `cursor`
        (which stays put while jobs are created; an offset does not). One more than the
        page is read, so `next_cursor` is given only when a job follows (as the schedule
        list's)."""
        job_filter.validate()
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        page = max(1, page)
        found, total = await self.store.lists.page(
            workspace_id,
            job_filter,
            cursor=cursor,
            offset=0 if cursor is not None else (page - 1) * limit,
            limit=limit + 1,
        )
        shown = found[:limit]
        last = shown[-1] if len(found) > limit else None
        return Page(
            shown,
            total.count,
            None if cursor is not None else page,
            limit,
            total_is_estimate=total.is_estimate,
            next_cursor=None if last is None else ListCursor(last.created_at, last.id),
        )

    async def list_steps(self, workspace_id: UUID, job_id: UUID) -> list[Step]:
        await self.require_job(workspace_id, job_id)
        return await self.jobs.list_steps(job_id)

    async def list_events(
        self, workspace_id: UUID, job_id: UUID, *, after_seq: int = 0, limit: int = 1000
    ) -> list[Event]:
        await self.require_job(workspace_id, job_id)
        return await self.jobs.list_events(job_id, after_seq=after_seq, limit=limit)

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, *, limit: int = 1000
    ) -> WorkspaceEventsPage:
        return await self.jobs.workspace_events_after(workspace_id, after, limit)

    async def resume_position(self, workspace_id: UUID, event_id: int) -> StreamPosition | None:
        """Where a workspace stream resumed after event `event_id` starts; None when the
        workspace never had that event. Raises StreamPositionGone when events the stream
        has not sent were deleted by retention since (see domain.lifetime)."""
        if event_id == 0:
            return resume_position(0, None, None)
        found = await self.jobs.event_position(workspace_id, event_id)
        pruned = await self.store.lifetime.pruned_events(workspace_id)
        return resume_position(event_id, found, pruned)

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        return await self.jobs.current_position(workspace_id)
