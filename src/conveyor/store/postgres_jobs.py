"""PostgreSQL's hot paths: each is one statement, so one round trip and its own transaction.

A data-modifying CTE updates the job rows and inserts their events together; the UPDATE's
row locks number the events, and `FOR UPDATE SKIP LOCKED` lets concurrent claimers pass
each other instead of queueing on the same rows. Behaviour matches `JobStore` exactly:
the tests run every case on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from conveyor.domain.events import Event
from conveyor.domain.jobs import Job, JobChange
from conveyor.store.connection import Json
from conveyor.store.jobs import EVENT_COLUMNS, JOB_COLUMNS, Completion, JobStore, NewJob

_EVENT_COLUMNS_OF_E = ", ".join("e." + column.strip() for column in EVENT_COLUMNS.split(","))
_EVENT_RECORD = "e(n int, type text, actor text, payload jsonb, step_id uuid)"
_INSERT_EVENT_COLUMNS = (
    "INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload, "
    "created_at)"
)

_INSERT_JOBS = f"""
WITH input AS (
    SELECT * FROM jsonb_to_recordset(:jobs::jsonb) AS j(
        id uuid, type text, status text, priority smallint, payload jsonb,
        agent_task_id text, max_attempts int, run_at timestamptz, idempotency_key text,
        retry_of uuid, retry_backoff_seconds float8, retry_backoff_max_seconds float8,
        events jsonb)
), inserted AS (
    INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error,
        progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key,
        worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds,
        retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at,
        version, last_event_seq, last_step_ordinal)
    SELECT id, :ws, type, status, priority, payload, NULL, NULL, 0, agent_task_id, 1,
        max_attempts, COALESCE(run_at, now()), idempotency_key, NULL, NULL, NULL, retry_of,
        retry_backoff_seconds, retry_backoff_max_seconds, now(), NULL, NULL, now(), 1,
        jsonb_array_length(events), 0
    FROM input ORDER BY id
    ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING {JOB_COLUMNS}
), new_events AS (
    {_INSERT_EVENT_COLUMNS}
    SELECT inserted.id, inserted.workspace_id, inserted.type, e.n, e.step_id, e.type, e.actor,
        e.payload, now()
    FROM inserted JOIN input ON input.id = inserted.id
    CROSS JOIN LATERAL jsonb_to_recordset(input.events) AS {_EVENT_RECORD}
)
SELECT {JOB_COLUMNS} FROM inserted
"""

_CLAIM = f"""
WITH picked AS (
    SELECT id FROM jobs
    WHERE workspace_id = :ws AND status = 'QUEUED' AND run_at <= now() {{type_condition}}
    ORDER BY priority, run_at, id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET status = 'RUNNING', worker_id = :worker_id, lease_id = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => :lease), started_at = now(),
        updated_at = now(), version = version + 1, last_event_seq = last_event_seq + 1
    FROM picked WHERE jobs.id = picked.id
    RETURNING {", ".join("jobs." + column.strip() for column in JOB_COLUMNS.split(","))}
), started AS (
    {_INSERT_EVENT_COLUMNS}
    SELECT id, workspace_id, type, last_event_seq, NULL, 'job.started', :actor,
        jsonb_build_object('attempt', attempt, 'worker_id', worker_id), now()
    FROM claimed
)
SELECT {JOB_COLUMNS} FROM claimed ORDER BY priority, run_at, id
"""

_COMPLETE = f"""
WITH input AS (
    SELECT * FROM jsonb_to_recordset(:completions::jsonb) AS c(id uuid, lease_id uuid, result jsonb)
), done AS (
    UPDATE jobs SET status = 'COMPLETED', result = input.result, progress_percent = 100,
        lease_expires_at = NULL, completed_at = now(), updated_at = now(),
        version = version + 1, last_event_seq = last_event_seq + 1
    FROM input
    WHERE jobs.id = input.id AND jobs.workspace_id = :ws AND jobs.lease_id = input.lease_id
        AND jobs.status = 'RUNNING'
    RETURNING {", ".join("jobs." + column.strip() for column in JOB_COLUMNS.split(","))}
), completed AS (
    {_INSERT_EVENT_COLUMNS}
    SELECT id, workspace_id, type, last_event_seq, NULL, 'job.completed', :actor,
        jsonb_build_object('attempt', attempt), now()
    FROM done
)
SELECT {JOB_COLUMNS} FROM done
"""


def _event_records(change_events: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "n": index,
            "type": event.type,
            "actor": event.actor,
            "payload": event.payload,
            "step_id": None if event.step_id is None else str(event.step_id),
        }
        for index, event in enumerate(change_events, start=1)
    ]


class PostgresJobStore(JobStore):
    async def insert_jobs(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob]
    ) -> list[tuple[Job, bool]]:
        records = []
        for new_job in new_jobs:
            values = self._job_values(workspace_id, new_job)
            records.append(
                {
                    "id": str(new_job.id),
                    "type": values["type"],
                    "status": values["status"],
                    "priority": values["priority"],
                    "payload": new_job.spec.payload,
                    "agent_task_id": values["agent_task_id"],
                    "max_attempts": values["max_attempts"],
                    "run_at": None if values["run_at"] is None else values["run_at"].isoformat(),
                    "idempotency_key": values["idempotency_key"],
                    "retry_of": None if values["retry_of"] is None else str(values["retry_of"]),
                    "retry_backoff_seconds": values["retry_backoff_seconds"],
                    "retry_backoff_max_seconds": values["retry_backoff_max_seconds"],
                    "events": _event_records(new_job.events),
                }
            )
        async with self.database.write() as connection:
            rows = await connection.fetch(_INSERT_JOBS, {"jobs": Json(records), "ws": workspace_id})
        created = {job.id: job for job in map(self.job_from_row, rows)}
        return await self._with_existing(workspace_id, new_jobs, created)

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        update, params = self._change_sql(workspace_id, change)
        if not change.events:
            async with self.database.write() as connection:
                row = await connection.fetchrow(update, params)
            return None if row is None else self.job_from_row(row)
        returning = update.rsplit(" RETURNING ", 1)[0]
        sql = (
            f"WITH changed AS ({returning} RETURNING {JOB_COLUMNS}), new_events AS ("
            f"{_INSERT_EVENT_COLUMNS} SELECT changed.id, changed.workspace_id, changed.type, "
            "changed.last_event_seq - :event_count + e.n, e.step_id, e.type, e.actor, "
            f"e.payload, now() FROM changed CROSS JOIN jsonb_to_recordset(:events::jsonb) "
            f"AS {_EVENT_RECORD}) SELECT {JOB_COLUMNS} FROM changed"
        )
        params["events"] = Json(_event_records(change.events))
        async with self.database.write() as connection:
            row = await connection.fetchrow(sql, params)
        return None if row is None else self.job_from_row(row)

    async def claim_jobs(
        self,
        workspace_id: UUID,
        *,
        types: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        worker_id: str,
        actor: str,
    ) -> list[Job]:
        type_condition = "" if types is None else "AND type = ANY(:types)"
        params: dict[str, Any] = {
            "ws": workspace_id,
            "limit": limit,
            "worker_id": worker_id,
            "lease": float(lease_seconds),
            "actor": actor,
        }
        if types is not None:
            params["types"] = list(types)
        async with self.database.write() as connection:
            rows = await connection.fetch(_CLAIM.format(type_condition=type_condition), params)
        return [self.job_from_row(row) for row in rows]

    async def complete_jobs(
        self, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[Job]:
        records = [
            {"id": str(c.job_id), "lease_id": str(c.lease_id), "result": c.result}
            for c in completions
        ]
        async with self.database.write() as connection:
            rows = await connection.fetch(
                _COMPLETE, {"completions": Json(records), "ws": workspace_id, "actor": actor}
            )
        return [self.job_from_row(row) for row in rows]

    async def events_in_ranges(self, ranges: Sequence[tuple[UUID, int, int]]) -> list[Event]:
        """One query for every announced range, however many streams wait on them."""
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {_EVENT_COLUMNS_OF_E} "
                "FROM unnest(:job_ids::uuid[], :firsts::int[], :lasts::int[]) "
                "AS r(job_id, first_seq, last_seq) "
                "JOIN events e ON e.job_id = r.job_id AND e.seq BETWEEN r.first_seq AND r.last_seq "
                "ORDER BY e.id",
                {
                    "job_ids": [job_id for job_id, _, _ in ranges],
                    "firsts": [first for _, first, _ in ranges],
                    "lasts": [last for _, _, last in ranges],
                },
            )
        return [self.event_from_row(row) for row in rows]
