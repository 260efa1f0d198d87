"""Jobs, steps and events in the database: the interface the service uses (`JobStore`), and
the statements both databases run the same way (`SharedJobStatements`).

Every write is guarded in SQL: a decision's change is stored only if the job still has
the version and a status the decision was made on (`apply_change`), a worker's report
only if its lease is still the job's (`complete_jobs`, `extend_lease`, `append_events`).
A guarded write that misses returns None and the service finds out why on a fresh read.

Each event gets the job's next `seq` in the same transaction as the change it records:
`last_event_seq` on the job row is bumped by the guarded UPDATE, whose row lock makes
the numbering gap-free under any concurrency.

There are two complete implementations, `PostgresJobStore` (postgres_jobs.py) and
`SqliteJobStore` (sqlite_jobs.py). Each writes its hot paths (create, claim, complete,
apply a change) and its workspace-stream reads its own way, and takes the rest from
`SharedJobStatements`, which runs the same code on either database with that database's
named queries (conveyor/store/sql). Neither overrides what it shares (a test checks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from conveyor.domain.errors import StepNotFound
from conveyor.domain.events import Event, NewEvent, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import (
    ClaimRequest,
    Completion,
    Job,
    JobChange,
    JobSpec,
    JobStatus,
)
from conveyor.domain.steps import Step, StepChange, StepPhase, StepType
from conveyor.ids import uuid7
from conveyor.store.changes import new_step_times, report_guard, step_assignments
from conveyor.store.claims import ClaimOutcome, ClaimPlanner
from conveyor.store.connection import Connection, Database, Json
from conveyor.store.projections import Claimed, Completed, Projection
from conveyor.store.queries import Queries, queries_for
from conveyor.store.rows import Rows


@dataclass(frozen=True, slots=True)
class NewJob:
    id: UUID
    spec: JobSpec

    @property
    def status(self) -> JobStatus:
        return JobStatus.PENDING if self.spec.hold else JobStatus.QUEUED

    def as_created(self, workspace_id: UUID, run_at: datetime, created_at: datetime) -> Job:
        """The job as the insert stored it, given what the database decided (its clock)."""
        spec = self.spec
        # Positional, in the order of Job's fields: a bulk create builds hundreds at once,
        # and binding 26 keywords costs more than the rest of this method.
        return Job(
            self.id,
            workspace_id,
            spec.type,
            self.status,
            spec.priority,
            spec.payload,
            None,  # result
            None,  # error
            0,  # progress_percent
            spec.agent_task_id,
            1,  # attempt
            spec.max_attempts,
            run_at,
            spec.idempotency_key,
            None,  # worker_id
            None,  # lease_id
            None,  # lease_expires_at
            spec.retry_of,
            spec.retry_backoff_seconds,
            spec.retry_backoff_max_seconds,
            created_at,
            None,  # started_at
            None,  # completed_at
            created_at,  # updated_at
            1,  # version
            1 if spec.hold else 2,  # last_event_seq: job.created, and job.queued unless held
            None,  # error_detail
            spec.concurrency_key,
            spec.timeout_seconds,
        )


@dataclass(frozen=True, slots=True)
class JobRef:
    """What an event row repeats of its job."""

    id: UUID
    workspace_id: UUID
    type: str


class JobStore(Protocol):
    """What the service, the event hub and the reaper ask of the database about jobs."""

    on_committed: Callable[[Sequence[Event]], None] | None
    """Told of every event this store commits, right after the commit (SQLite's
    in-process event bus listens here; PostgreSQL announces events with NOTIFY)."""

    async def close(self) -> None:
        """Stop what it runs in the background, before the database closes."""

    # -- reads
    async def get_job(self, workspace_id: UUID, job_id: UUID) -> Job | None: ...

    async def list_steps(self, job_id: UUID) -> list[Step]: ...

    async def get_step(self, job_id: UUID, step_id: UUID) -> Step | None: ...

    async def list_events(self, job_id: UUID, *, after_seq: int, limit: int) -> list[Event]: ...

    async def find_by_idempotency_keys(
        self, workspace_id: UUID, keys: Sequence[str]
    ) -> list[Job]: ...

    async def find_expired_leases(self, limit: int) -> list[Job]: ...

    # -- workspace streams
    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, limit: int
    ) -> WorkspaceEventsPage:
        """The workspace's events after `after`, in (tx, id) order, as far as they can be
        passed on without anything committing behind them later."""
        ...

    async def event_position(self, workspace_id: UUID, event_id: int) -> StreamPosition | None:
        """Where the workspace's event `event_id` stands; None if it has no such event."""
        ...

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        """Where a workspace stream that starts now stands."""
        ...

    async def events_in_ranges(self, ranges: Sequence[tuple[UUID, int, int]]) -> list[Event]:
        """Events first..last (inclusive) of each job, in id order."""
        ...

    async def adopt_foreign_events(self) -> int:
        """Give events copied from another database server a place in this one's order;
        how many moved."""
        ...

    # -- writes
    async def insert_jobs(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], actor: str
    ) -> list[tuple[Job, bool]]:
        """Insert jobs with their first events (`decide_creation_events`), all or nothing.
        A job whose idempotency key the workspace already has is not inserted: the existing
        job comes back instead, with False. The result follows the order of `new_jobs`."""
        ...

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """Store a decision if the job is still as it was decided on; else None."""
        ...

    async def claim_jobs(
        self, request: ClaimRequest, answer: Projection[Claimed]
    ) -> ClaimOutcome[Claimed]:
        """Move up to `request.limit` claimable jobs (`run_at` come) of the request's
        workspaces to the leased status under fresh leases, each with its `start_event`:
        the groups of the workspaces (by concurrency key) in fair turns, each group's most
        urgent first (lowest priority number, then earliest run_at, then oldest), and only
        as far as the limits governing them allow (store/claims.py)."""
        ...

    async def complete_jobs(
        self,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[Completed]:
        """Complete every job, in the workspace its completion names, whose lease is still
        the one given (with its `completion_event`): one call and one transaction whatever
        their workspaces (on PostgreSQL one statement). Returns those completed; the others
        are left as they are for the service to explain."""
        ...

    async def extend_lease(
        self,
        workspace_id: UUID,
        job_id: UUID,
        lease_id: UUID,
        lease_seconds: float | None,
        timeout_grace_seconds: float,
    ) -> Job | None:
        """Push the lease's deadline out, `lease_seconds` from now (None: as long as its
        claim asked for), never past the attempt's timeout deadline (its timeout plus
        `timeout_grace_seconds`); None once that has passed, or when the lease is not the
        job's."""
        ...

    async def append_events(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        new_events: Sequence[NewEvent],
    ) -> list[Event] | None: ...

    async def insert_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        name: str,
        phase: StepPhase,
        step_type: StepType,
        decide: Callable[[UUID, int], StepChange],
    ) -> tuple[Step, list[Event]] | None: ...

    async def update_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        step_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        decide: Callable[[Step], StepChange],
    ) -> tuple[Step, list[Event]] | None: ...


class SharedJobStatements:
    """The part of `JobStore` both databases run the same way, with their own queries."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.queries: Queries = queries_for(database.dialect)
        self.rows = Rows(database.codec)
        self.planner = ClaimPlanner(self.queries, database.codec)
        self.on_committed: Callable[[Sequence[Event]], None] | None = None

    def _published(self, written: Sequence[Event]) -> None:
        if written and self.on_committed is not None:
            self.on_committed(written)

    # -- reads ---------------------------------------------------------------------------

    async def get_job(self, workspace_id: UUID, job_id: UUID) -> Job | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["get_job"].sql, {"job_id": job_id, "ws": workspace_id}
            )
        return None if row is None else self.rows.job(row)

    async def list_steps(self, job_id: UUID) -> list[Step]:
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["list_steps"].sql, {"job_id": job_id})
        return [self.rows.step(row) for row in rows]

    async def get_step(self, job_id: UUID, step_id: UUID) -> Step | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["get_step"].sql, {"step_id": step_id, "job_id": job_id}
            )
        return None if row is None else self.rows.step(row)

    async def list_events(self, job_id: UUID, *, after_seq: int, limit: int) -> list[Event]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["list_events"].sql,
                {"job_id": job_id, "after": after_seq, "limit": limit},
            )
        return [self.rows.event(row) for row in rows]

    async def event_position(self, workspace_id: UUID, event_id: int) -> StreamPosition | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["event_position"].sql, {"id": event_id, "ws": workspace_id}
            )
        return None if row is None else StreamPosition(row["tx"], row["id"])

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["current_position"].sql, {"ws": workspace_id}
            )
        return StreamPosition(0, 0) if row is None else StreamPosition(row["tx"], row["id"])

    async def find_by_idempotency_keys(self, workspace_id: UUID, keys: Sequence[str]) -> list[Job]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["find_by_idempotency_keys"].compose(
                    keys=self.queries.in_list("idempotency_key", "keys")
                ),
                {"ws": workspace_id, "keys": list(keys)},
            )
        return [self.rows.job(row) for row in rows]

    async def find_expired_leases(self, limit: int) -> list[Job]:
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["find_expired_leases"].sql, {"limit": limit})
        return [self.rows.job(row) for row in rows]

    async def with_existing(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], created: dict[UUID, Job]
    ) -> list[tuple[Job, bool]]:
        """`insert_jobs`'s answer: each new job as created, or, where its idempotency key
        was taken, the job that holds it."""
        missing_keys = [
            new_job.spec.idempotency_key
            for new_job in new_jobs
            if new_job.id not in created and new_job.spec.idempotency_key is not None
        ]
        existing: dict[str, Job] = {}
        if missing_keys:
            for job in await self.find_by_idempotency_keys(workspace_id, missing_keys):
                assert job.idempotency_key is not None
                existing[job.idempotency_key] = job
        results: list[tuple[Job, bool]] = []
        for new_job in new_jobs:
            if new_job.id in created:
                results.append((created[new_job.id], True))
            else:
                key = new_job.spec.idempotency_key
                assert key is not None, "an insert without an idempotency key cannot clash"
                assert key in existing, "the clashing job must exist"
                results.append((existing[key], False))
        return results

    # -- leases and reports --------------------------------------------------------------

    async def extend_lease(
        self,
        workspace_id: UUID,
        job_id: UUID,
        lease_id: UUID,
        lease_seconds: float | None,
        timeout_grace_seconds: float,
    ) -> Job | None:
        """Push a lease's deadline out. Not a change of the job (its version stays), so a
        heartbeat never makes a client's compare-and-set fail."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["extend_lease"].sql,
                {
                    "lease": lease_seconds,
                    "grace": timeout_grace_seconds,
                    "job_id": job_id,
                    "ws": workspace_id,
                    "lease_id": lease_id,
                },
            )
        return None if row is None else self.rows.job(row)

    async def insert_events(
        self,
        connection: Connection,
        job: Job | JobRef,
        last_seq_before: int,
        new_events: Sequence[NewEvent],
    ) -> list[Event]:
        """Insert a job's events, numbered after `last_seq_before`, in this transaction."""
        sql = self.queries["insert_event"].sql
        inserted = []
        for offset, event in enumerate(new_events, start=1):
            row = await connection.fetchrow(sql, event_params(job, last_seq_before + offset, event))
            assert row is not None
            inserted.append(self.rows.event(row))
        return inserted

    async def append_events(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        new_events: Sequence[NewEvent],
    ) -> list[Event] | None:
        """Append events to a job that still accepts reports from this caller; else None."""
        guard, params = report_guard(reportable, lease_id)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                self.queries["reserve_event_seqs"].compose(guard=guard),
                {**params, "event_count": len(new_events), "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            last = row["last_event_seq"]
            job = JobRef(job_id, workspace_id, row["type"])
            written = await self.insert_events(connection, job, last - len(new_events), new_events)
            connection.after_commit(lambda: self._published(written))
        return written

    # -- steps ---------------------------------------------------------------------------

    async def insert_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        name: str,
        phase: StepPhase,
        step_type: StepType,
        decide: Callable[[UUID, int], StepChange],
    ) -> tuple[Step, list[Event]] | None:
        """Add the job's next step. `decide(step_id, ordinal)` returns its StepChange."""
        guard, params = report_guard(reportable, lease_id)
        step_id = uuid7()
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                self.queries["reserve_step_ordinal"].compose(guard=guard),
                {**params, "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            ordinal = row["last_step_ordinal"]
            change = decide(step_id, ordinal)
            step_row = await connection.fetchrow(
                self.queries["insert_step"].compose(**new_step_times(change)),
                {
                    "id": step_id,
                    "job_id": job_id,
                    "ordinal": ordinal,
                    "name": name,
                    "phase": phase.value,
                    "type": step_type.value,
                    "status": str(change.values["status"]),
                },
            )
            assert step_row is not None
            written = await self._number_and_insert_events(
                connection, workspace_id, job_id, change.events
            )
            connection.after_commit(lambda: self._published(written))
        return self.rows.step(step_row), written

    async def update_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        step_id: UUID,
        *,
        lease_id: UUID | None,
        reportable: frozenset[JobStatus],
        decide: Callable[[Step], StepChange],
    ) -> tuple[Step, list[Event]] | None:
        """Change a step under the job's report guard; `decide(step)` returns the change.

        None when the job no longer accepts this caller's reports. The job row is locked
        first (by a no-op UPDATE), then the step: the order `insert_step` takes too."""
        guard, params = report_guard(reportable, lease_id)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                self.queries["lock_job_for_report"].compose(guard=guard),
                {**params, "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            step_row = await connection.fetchrow(
                self.queries["get_step"].sql, {"step_id": step_id, "job_id": job_id}
            )
            if step_row is None:
                raise StepNotFound(step_id)
            step = self.rows.step(step_row)
            change = decide(step)
            assignments, values = step_assignments(change)
            if assignments:
                step_row = await connection.fetchrow(
                    self.queries["update_step"].compose(assignments=assignments),
                    {**values, "step_id": step_id},
                )
                assert step_row is not None
                step = self.rows.step(step_row)
            written = await self._number_and_insert_events(
                connection, workspace_id, job_id, change.events
            )
            connection.after_commit(lambda: self._published(written))
        return step, written

    async def _number_and_insert_events(
        self,
        connection: Connection,
        workspace_id: UUID,
        job_id: UUID,
        new_events: Sequence[NewEvent],
    ) -> list[Event]:
        if not new_events:
            return []
        row = await connection.fetchrow(
            self.queries["reserve_more_event_seqs"].sql,
            {"event_count": len(new_events), "job_id": job_id},
        )
        assert row is not None
        job = JobRef(job_id, workspace_id, row["type"])
        return await self.insert_events(
            connection, job, row["last_event_seq"] - len(new_events), new_events
        )


def event_params(job: Job | JobRef, seq: int, event: NewEvent) -> dict[str, Any]:
    """The parameters of `insert_event` for one event of `job`."""
    return {
        "job_id": job.id,
        "ws": job.workspace_id,
        "job_type": job.type,
        "seq": seq,
        "step_id": event.step_id,
        "type": event.type,
        "actor": event.actor,
        "payload": Json(event.payload),
    }
