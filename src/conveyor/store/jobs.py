"""Jobs, steps and events in the database.

Every write is guarded in SQL: a decision's change is stored only if the job still has
the version and a status the decision was made on (`apply_change`), a worker's report
only if its lease is still the job's (`complete_jobs`, `extend_lease`, `append_events`).
A guarded write that misses returns None and the service finds out why on a fresh read.

Each event gets the job's next `seq` in the same transaction as the change it records:
`last_event_seq` on the job row is bumped by the guarded UPDATE, whose row lock makes
the numbering gap-free under any concurrency.

This module holds the SQL that runs on both databases. The hot paths (create, claim,
complete a batch) differ by database: `PostgresJobStore` does each in one statement
(data-modifying CTEs), `SqliteJobStore` in one call on the writer's thread.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from conveyor.domain.errors import StepNotFound
from conveyor.domain.events import Event, NewEvent, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import (
    ClaimedJob,
    ClaimRequest,
    CompletedJob,
    Completion,
    Job,
    JobChange,
    JobFilter,
    JobSpec,
    JobStatus,
    sources_for,
)
from conveyor.domain.steps import Step, StepChange, StepPhase, StepStatus, StepType
from conveyor.ids import uuid7
from conveyor.store.connection import Connection, Database, Json, Row

JOB_COLUMNS: Final = (
    "id, workspace_id, type, status, priority, payload, result, error, progress_percent, "
    "agent_task_id, attempt, max_attempts, run_at, idempotency_key, worker_id, lease_id, "
    "lease_expires_at, retry_of, retry_backoff_seconds, retry_backoff_max_seconds, "
    "created_at, started_at, completed_at, updated_at, version, last_event_seq"
)
STEP_COLUMNS: Final = (
    "id, job_id, ordinal, name, phase, type, status, started_at, completed_at, duration_ms, "
    "tokens_input, tokens_output, output"
)
EVENT_COLUMNS: Final = (
    "id, job_id, workspace_id, job_type, seq, step_id, type, actor, payload, created_at, tx"
)

# Columns a JobChange may set, and which of them hold JSON. Column names are spliced into
# SQL, so only these are accepted.
CHANGEABLE_JOB_COLUMNS: Final = frozenset(
    {
        "result",
        "error",
        "progress_percent",
        "attempt",
        "worker_id",
        "lease_id",
        "lease_expires_at",
        "run_at",
        "started_at",
        "completed_at",
    }
)
CHANGEABLE_STEP_COLUMNS: Final = frozenset(
    {
        "status",
        "output",
        "tokens_input",
        "tokens_output",
        "duration_ms",
        "started_at",
        "completed_at",
    }
)
JSON_COLUMNS: Final = frozenset({"payload", "result"})


def as_claimed(job: Job) -> ClaimedJob:
    """A job just claimed (RUNNING, under a lease) as `claim_jobs_briefly` answers it."""
    assert job.lease_id is not None
    assert job.lease_expires_at is not None
    assert job.started_at is not None
    return ClaimedJob(
        job.id,
        job.type,
        job.payload,
        job.attempt,
        job.max_attempts,
        job.priority,
        job.agent_task_id,
        job.lease_id,
        job.lease_expires_at,
        job.run_at,
        job.started_at,
    )


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
        )


@dataclass(frozen=True, slots=True)
class JobRef:
    """What an event row repeats of its job."""

    id: UUID
    workspace_id: UUID
    type: str


class JobStore(abc.ABC):
    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect = database.dialect
        self._insert_job_sql = self._build_insert_job_sql()
        self._insert_event_sql = (
            "INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, "
            "payload, created_at) VALUES (:job_id, :ws, :job_type, :seq, :step_id, :type, "
            f":actor, :payload, {self.dialect.now}) RETURNING {EVENT_COLUMNS}"
        )
        self.on_committed: Callable[[Sequence[Event]], None] | None = None
        """Told of every event this store commits, right after the commit (the in-process
        event bus listens here; PostgreSQL instead announces events with NOTIFY)."""

    def _published(self, written: Sequence[Event]) -> None:
        if written and self.on_committed is not None:
            self.on_committed(written)

    # -- decoding ------------------------------------------------------------------------

    def job_from_row(self, row: Row) -> Job:
        d = self.dialect
        return Job(
            id=d.uuid(row["id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            type=row["type"],
            status=JobStatus(row["status"]),
            priority=row["priority"],
            payload=d.json(row["payload"]),
            result=d.optional_json(row["result"]),
            error=row["error"],
            progress_percent=row["progress_percent"],
            agent_task_id=row["agent_task_id"],
            attempt=row["attempt"],
            max_attempts=row["max_attempts"],
            run_at=d.timestamp(row["run_at"]),
            idempotency_key=row["idempotency_key"],
            worker_id=row["worker_id"],
            lease_id=d.optional_uuid(row["lease_id"]),
            lease_expires_at=d.optional_timestamp(row["lease_expires_at"]),
            retry_of=d.optional_uuid(row["retry_of"]),
            retry_backoff_seconds=row["retry_backoff_seconds"],
            retry_backoff_max_seconds=row["retry_backoff_max_seconds"],
            created_at=d.timestamp(row["created_at"]),
            started_at=d.optional_timestamp(row["started_at"]),
            completed_at=d.optional_timestamp(row["completed_at"]),
            updated_at=d.timestamp(row["updated_at"]),
            version=row["version"],
            last_event_seq=row["last_event_seq"],
        )

    def step_from_row(self, row: Row) -> Step:
        d = self.dialect
        return Step(
            id=d.uuid(row["id"]),
            job_id=d.uuid(row["job_id"]),
            ordinal=row["ordinal"],
            name=row["name"],
            phase=StepPhase(row["phase"]),
            type=StepType(row["type"]),
            status=StepStatus(row["status"]),
            started_at=d.optional_timestamp(row["started_at"]),
            completed_at=d.optional_timestamp(row["completed_at"]),
            duration_ms=row["duration_ms"],
            tokens_input=row["tokens_input"],
            tokens_output=row["tokens_output"],
            output=row["output"],
        )

    def event_from_row(self, row: Row) -> Event:
        d = self.dialect
        return Event(
            id=row["id"],
            job_id=d.uuid(row["job_id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            job_type=row["job_type"],
            seq=row["seq"],
            step_id=d.optional_uuid(row["step_id"]),
            type=row["type"],
            actor=row["actor"],
            payload=d.json(row["payload"]),
            timestamp=d.timestamp(row["created_at"]),
            tx=row["tx"],
        )

    # -- reads ---------------------------------------------------------------------------

    async def get_job(self, workspace_id: UUID, job_id: UUID) -> Job | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = :job_id AND workspace_id = :ws",
                {"job_id": job_id, "ws": workspace_id},
            )
        return None if row is None else self.job_from_row(row)

    async def list_jobs(
        self, workspace_id: UUID, job_filter: JobFilter, *, offset: int, limit: int
    ) -> tuple[list[Job], int]:
        conditions = ["workspace_id = :ws"]
        params: dict[str, Any] = {"ws": workspace_id}
        if job_filter.statuses:
            conditions.append(self.dialect.in_list("status", "statuses"))
            params["statuses"] = sorted(job_filter.statuses)
        if job_filter.type is not None:
            conditions.append("type = :type")
            params["type"] = job_filter.type
        if job_filter.agent_task_id is not None:
            conditions.append("agent_task_id = :agent_task_id")
            params["agent_task_id"] = job_filter.agent_task_id
        if job_filter.id_contains:
            # Anywhere in the id: UUIDv7s begin with a timestamp that jobs created together
            # share, so people search by the end (the dashboard shows the last 8 digits).
            conditions.append("CAST(id AS TEXT) LIKE :id_contains")
            params["id_contains"] = f"%{job_filter.id_contains.lower()}%"
        where = " AND ".join(conditions)
        async with self.database.read() as connection:
            total_row = await connection.fetchrow(
                f"SELECT count(*) AS total FROM jobs WHERE {where}", params
            )
            rows = await connection.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} "
                "ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset",
                {**params, "limit": limit, "offset": offset},
            )
        total = int(total_row["total"]) if total_row is not None else 0
        return [self.job_from_row(row) for row in rows], total

    async def list_steps(self, job_id: UUID) -> list[Step]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {STEP_COLUMNS} FROM steps WHERE job_id = :job_id ORDER BY ordinal",
                {"job_id": job_id},
            )
        return [self.step_from_row(row) for row in rows]

    async def get_step(self, job_id: UUID, step_id: UUID) -> Step | None:
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                f"SELECT {STEP_COLUMNS} FROM steps WHERE id = :step_id AND job_id = :job_id",
                {"step_id": step_id, "job_id": job_id},
            )
        return None if row is None else self.step_from_row(row)

    async def list_events(self, job_id: UUID, *, after_seq: int, limit: int) -> list[Event]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = :job_id AND seq > :after "
                "ORDER BY seq LIMIT :limit",
                {"job_id": job_id, "after": after_seq, "limit": limit},
            )
        return [self.event_from_row(row) for row in rows]

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, limit: int
    ) -> WorkspaceEventsPage:
        """The workspace's events after `after`, in (tx, id) order. Here (SQLite: one
        writer, tx 0) that is id order, and every committed event can be passed on."""
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE workspace_id = :ws "
                "AND (tx, id) > (:tx, :id) ORDER BY tx, id LIMIT :limit",
                {"ws": workspace_id, "tx": after.tx, "id": after.id, "limit": limit},
            )
        events = [self.event_from_row(row) for row in rows]
        reached = events[-1].position if events else after
        return WorkspaceEventsPage(events, reached, full=len(events) == limit, held=False)

    async def event_position(self, workspace_id: UUID, event_id: int) -> StreamPosition | None:
        """Where the workspace's event `event_id` stands; None if it has no such event."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                "SELECT tx, id FROM events WHERE id = :id AND workspace_id = :ws",
                {"id": event_id, "ws": workspace_id},
            )
        return None if row is None else StreamPosition(row["tx"], row["id"])

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        """Where a workspace stream that starts now stands: after the newest event."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                "SELECT tx, id FROM events WHERE workspace_id = :ws "
                "ORDER BY tx DESC, id DESC LIMIT 1",
                {"ws": workspace_id},
            )
        return StreamPosition(0, 0) if row is None else StreamPosition(row["tx"], row["id"])

    async def adopt_foreign_events(self) -> int:
        """Give events copied from another database server a place in this one's order
        (PostgreSQL; see there). SQLite orders events by id alone: nothing to do."""
        return 0

    async def events_in_ranges(self, ranges: Sequence[tuple[UUID, int, int]]) -> list[Event]:
        """Events first..last (inclusive) of each job, in id order."""
        found: list[Event] = []
        async with self.database.read() as connection:
            for job_id, first, last in ranges:
                rows = await connection.fetch(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE job_id = :job_id "
                    "AND seq BETWEEN :first AND :last",
                    {"job_id": job_id, "first": first, "last": last},
                )
                found += [self.event_from_row(row) for row in rows]
        return sorted(found, key=lambda event: event.id)

    async def find_expired_leases(self, limit: int) -> list[Job]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs "
                f"WHERE status = 'RUNNING' AND lease_expires_at < {self.dialect.now} "
                "ORDER BY lease_expires_at LIMIT :limit",
                {"limit": limit},
            )
        return [self.job_from_row(row) for row in rows]

    # -- create --------------------------------------------------------------------------

    @abc.abstractmethod
    async def insert_jobs(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], actor: str
    ) -> list[tuple[Job, bool]]:
        """Insert jobs with their first events (`decide_creation_events`), all or nothing.
        A job whose idempotency key the workspace already has is not inserted: the existing
        job comes back instead, with False. The result follows the order of `new_jobs`."""

    async def find_by_idempotency_keys(self, workspace_id: UUID, keys: Sequence[str]) -> list[Job]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE workspace_id = :ws "
                f"AND {self.dialect.in_list('idempotency_key', 'keys')}",
                {"ws": workspace_id, "keys": list(keys)},
            )
        return [self.job_from_row(row) for row in rows]

    async def _with_existing(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], created: dict[UUID, Job]
    ) -> list[tuple[Job, bool]]:
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

    def _build_insert_job_sql(self) -> str:
        now = self.dialect.now
        return (
            "INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error, "
            "progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key, "
            "worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds, "
            "retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at, "
            "version, last_event_seq, last_step_ordinal) "
            "VALUES (:id, :ws, :type, :status, :priority, :payload, NULL, NULL, 0, "
            f":agent_task_id, 1, :max_attempts, COALESCE(:run_at, {now}), :idempotency_key, "
            "NULL, NULL, NULL, :retry_of, :retry_backoff_seconds, :retry_backoff_max_seconds, "
            f"{now}, NULL, NULL, {now}, 1, :event_count, 0) "
            "ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL "
            f"DO NOTHING RETURNING {JOB_COLUMNS}"
        )

    def _job_values(self, workspace_id: UUID, new_job: NewJob) -> dict[str, Any]:
        spec = new_job.spec
        return {
            "id": new_job.id,
            "ws": workspace_id,
            "type": spec.type,
            "status": new_job.status.value,
            "priority": spec.priority,
            "payload": Json(spec.payload),
            "agent_task_id": spec.agent_task_id,
            "max_attempts": spec.max_attempts,
            "run_at": spec.run_at,
            "idempotency_key": spec.idempotency_key,
            "retry_of": spec.retry_of,
            "retry_backoff_seconds": spec.retry_backoff_seconds,
            "retry_backoff_max_seconds": spec.retry_backoff_max_seconds,
            "event_count": 1 if spec.hold else 2,
        }

    async def _insert_events(
        self,
        connection: Connection,
        job: Job | JobRef,
        last_seq_before: int,
        new_events: Sequence[NewEvent],
    ) -> list[Event]:
        inserted = []
        for offset, event in enumerate(new_events, start=1):
            row = await connection.fetchrow(
                self._insert_event_sql,
                {
                    "job_id": job.id,
                    "ws": job.workspace_id,
                    "job_type": job.type,
                    "seq": last_seq_before + offset,
                    "step_id": event.step_id,
                    "type": event.type,
                    "actor": event.actor,
                    "payload": Json(event.payload),
                },
            )
            assert row is not None
            inserted.append(self.event_from_row(row))
        return inserted

    # -- guarded changes -----------------------------------------------------------------

    def _change_sql(self, workspace_id: UUID, change: JobChange) -> tuple[str, dict[str, Any]]:
        """The guarded UPDATE for a decision: an allowed status and, as the change asks,
        the version it was decided on, the lease, the progress, an expired deadline."""
        unknown = (set(change.values) | change.stamp | set(change.delay)) - CHANGEABLE_JOB_COLUMNS
        if unknown:
            raise ValueError(f"a JobChange may not set {sorted(unknown)}")
        allowed = change.allowed_sources
        if change.target is not None:
            # Whatever the change says, the table has the last word.
            allowed = allowed & sources_for(change.target, by_system=True)
        if not allowed:
            raise ValueError(f"no status may move to {change.target}: {change.allowed_sources}")
        now = self.dialect.now
        assignments = []
        params: dict[str, Any] = {
            "job_id": change.job_id,
            "ws": workspace_id,
            "allowed": sorted(allowed),
            "event_count": len(change.events),
        }
        guards = ["id = :job_id", "workspace_id = :ws", self.dialect.in_list("status", "allowed")]
        if change.expected_version is not None:
            guards.append("version = :expected_version")
            params["expected_version"] = change.expected_version
        if change.lease_id is not None:
            guards.append("lease_id = :guard_lease_id")
            params["guard_lease_id"] = change.lease_id
        if change.progress_at_most is not None:
            guards.append("progress_percent <= :progress_at_most")
            params["progress_at_most"] = change.progress_at_most
        if change.only_if_lease_expired:
            guards.append(f"lease_expires_at < {self.dialect.now}")
        if change.target is not None:
            assignments.append("status = :status")
            params["status"] = change.target.value
        for column, value in sorted(change.values.items()):
            assignments.append(f"{column} = :set_{column}")
            params[f"set_{column}"] = Json(value) if column in JSON_COLUMNS else value
        for column in sorted(change.stamp):
            assignments.append(f"{column} = {now}")
        for column, seconds in sorted(change.delay.items()):
            assignments.append(f"{column} = {self.dialect.now_plus('delay_' + column)}")
            params[f"delay_{column}"] = seconds
        assignments += [
            "version = version + 1",
            f"updated_at = {now}",
            "last_event_seq = last_event_seq + :event_count",
        ]
        sql = (
            f"UPDATE jobs SET {', '.join(assignments)} WHERE {' AND '.join(guards)} "
            f"RETURNING {JOB_COLUMNS}"
        )
        return sql, params

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """Store a decision if the job is still as it was decided on; else None."""
        sql, params = self._change_sql(workspace_id, change)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(sql, params)
            if row is None:
                return None
            job = self.job_from_row(row)
            written = await self._insert_events(
                connection, job, job.last_event_seq - len(change.events), change.events
            )
            connection.after_commit(lambda: self._published(written))
        return job

    @abc.abstractmethod
    async def claim_jobs(self, workspace_id: UUID, request: ClaimRequest) -> list[Job]:
        """Move up to `request.limit` of the most urgent claimable jobs (`CLAIMABLE_STATUS`,
        `run_at` come, lowest priority number then earliest run_at then oldest) to RUNNING
        under fresh leases, each with its `start_event`; most urgent first."""

    async def claim_jobs_briefly(
        self, workspace_id: UUID, request: ClaimRequest
    ) -> list[ClaimedJob]:
        """`claim_jobs`, answered with `ClaimedJob`s rather than whole jobs."""
        return [as_claimed(job) for job in await self.claim_jobs(workspace_id, request)]

    @abc.abstractmethod
    async def complete_jobs(
        self, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[Job]:
        """Complete every job whose lease is still the one given (with its
        `completion_event`). Returns those completed; the others are left as they are for
        the service to explain."""

    async def complete_jobs_briefly(
        self, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[CompletedJob]:
        """`complete_jobs`, answered with `CompletedJob`s rather than whole jobs."""
        return [
            CompletedJob(job.id, job.type, job.started_at, job.completed_at)
            for job in await self.complete_jobs(workspace_id, completions, actor)
        ]

    async def extend_lease(
        self, workspace_id: UUID, job_id: UUID, lease_id: UUID, lease_seconds: float
    ) -> Job | None:
        """Push a lease's deadline out. Not a change of the job (its version stays), so a
        heartbeat never makes a client's compare-and-set fail."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                f"UPDATE jobs SET lease_expires_at = {self.dialect.now_plus('lease')} "
                "WHERE id = :job_id AND workspace_id = :ws AND lease_id = :lease_id "
                f"AND status = 'RUNNING' RETURNING {JOB_COLUMNS}",
                {
                    "lease": lease_seconds,
                    "job_id": job_id,
                    "ws": workspace_id,
                    "lease_id": lease_id,
                },
            )
        return None if row is None else self.job_from_row(row)

    def _report_guard(
        self, lease_id: UUID | None, statuses: frozenset[JobStatus]
    ) -> tuple[str, dict[str, Any]]:
        condition = f"{self.dialect.in_list('status', 'allowed')}"
        params: dict[str, Any] = {"allowed": sorted(statuses)}
        if lease_id is not None:
            condition += " AND lease_id = :lease_id"
            params["lease_id"] = lease_id
        return condition, params

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
        guard, params = self._report_guard(lease_id, reportable)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE jobs SET last_event_seq = last_event_seq + :event_count "
                f"WHERE id = :job_id AND workspace_id = :ws AND {guard} "
                "RETURNING last_event_seq, type",
                {**params, "event_count": len(new_events), "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            last = row["last_event_seq"]
            job = JobRef(job_id, workspace_id, row["type"])
            written = await self._insert_events(connection, job, last - len(new_events), new_events)
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
        guard, params = self._report_guard(lease_id, reportable)
        step_id = uuid7()
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE jobs SET last_step_ordinal = last_step_ordinal + 1 "
                f"WHERE id = :job_id AND workspace_id = :ws AND {guard} "
                "RETURNING last_step_ordinal, last_event_seq",
                {**params, "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            ordinal = row["last_step_ordinal"]
            change = decide(step_id, ordinal)
            now = self.dialect.now
            started = now if "started_at" in change.stamp else "NULL"
            completed = now if "completed_at" in change.stamp else "NULL"
            duration = "0" if change.measure_duration else "NULL"
            step_row = await connection.fetchrow(
                f"INSERT INTO steps ({STEP_COLUMNS}) VALUES (:id, :job_id, :ordinal, :name, "
                f":phase, :type, :status, {started}, {completed}, {duration}, NULL, NULL, NULL) "
                f"RETURNING {STEP_COLUMNS}",
                {
                    "id": step_id,
                    "job_id": job_id,
                    "ordinal": ordinal,
                    "name": name,
                    "phase": phase.value,
                    "type": step_type.value,
                    "status": change.values["status"],
                },
            )
            assert step_row is not None
            written = await self._bump_and_insert_events(
                connection, workspace_id, job_id, change.events
            )
            connection.after_commit(lambda: self._published(written))
        return self.step_from_row(step_row), written

    async def _bump_and_insert_events(
        self,
        connection: Connection,
        workspace_id: UUID,
        job_id: UUID,
        new_events: Sequence[NewEvent],
    ) -> list[Event]:
        if not new_events:
            return []
        row = await connection.fetchrow(
            "UPDATE jobs SET last_event_seq = last_event_seq + :n WHERE id = :job_id "
            "RETURNING last_event_seq, type",
            {"n": len(new_events), "job_id": job_id},
        )
        assert row is not None
        job = JobRef(job_id, workspace_id, row["type"])
        return await self._insert_events(
            connection, job, row["last_event_seq"] - len(new_events), new_events
        )

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
        guard, params = self._report_guard(lease_id, reportable)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                "UPDATE jobs SET last_step_ordinal = last_step_ordinal "
                f"WHERE id = :job_id AND workspace_id = :ws AND {guard} RETURNING id",
                {**params, "job_id": job_id, "ws": workspace_id},
            )
            if row is None:
                return None
            step_row = await connection.fetchrow(
                f"SELECT {STEP_COLUMNS} FROM steps WHERE id = :step_id AND job_id = :job_id",
                {"step_id": step_id, "job_id": job_id},
            )
            if step_row is None:
                raise StepNotFound(step_id)
            step = self.step_from_row(step_row)
            change = decide(step)
            assignments, values = self._step_assignments(change)
            if assignments:
                step_row = await connection.fetchrow(
                    f"UPDATE steps SET {', '.join(assignments)} WHERE id = :step_id "
                    f"RETURNING {STEP_COLUMNS}",
                    {**values, "step_id": step_id},
                )
                assert step_row is not None
                step = self.step_from_row(step_row)
            written = await self._bump_and_insert_events(
                connection, workspace_id, job_id, change.events
            )
            connection.after_commit(lambda: self._published(written))
        return step, written

    def _step_assignments(self, change: StepChange) -> tuple[list[str], dict[str, Any]]:
        unknown = (set(change.values) | change.stamp) - CHANGEABLE_STEP_COLUMNS
        if unknown:
            raise ValueError(f"a StepChange may not set {sorted(unknown)}")
        now = self.dialect.now
        assignments: list[str] = []
        values: dict[str, Any] = {}
        for column, value in sorted(change.values.items()):
            assignments.append(f"{column} = :set_{column}")
            values[f"set_{column}"] = value
        for column in sorted(change.stamp):
            assignments.append(f"{column} = {now}")
        if change.measure_duration:
            elapsed = self.dialect.seconds_since("started_at")
            assignments.append(f"duration_ms = CAST(COALESCE({elapsed}, 0) * 1000 AS BIGINT)")
        return assignments, values
