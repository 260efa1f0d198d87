"""`JobStore` on SQLite: a whole batch in one call on the writer connection's thread.

Every statement sent from the event loop to SQLite's thread and back costs a thread hop,
which outweighs the statement itself. Creating, claiming or completing a batch of jobs
therefore runs as one function on the writer's thread, inside the write transaction:
one hop for the batch instead of two or three per job.

Its own: `insert_jobs`, `apply_change`, `claim_jobs`, `complete_jobs`,
`workspace_events_after`, `events_in_ranges`, `adopt_foreign_events`.
Shared (`SharedJobStatements`, with sqlite.sql's queries where they differ): the rest.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from conveyor.domain.events import Event, NewEvent, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import (
    ClaimRequest,
    Completion,
    Job,
    JobChange,
    completion_event,
    decide_creation_events,
    start_event,
)
from conveyor.store.changes import guarded_change
from conveyor.store.connection import Json
from conveyor.store.jobs import JobRef, NewJob, SharedJobStatements, event_params
from conveyor.store.projections import Claimed, Completed, Projection
from conveyor.store.sqlite import Executor, SqliteDatabase, encode_params

Batch = Callable[[Executor], tuple[list[sqlite3.Row], list[sqlite3.Row]]]


def _job_values(workspace_id: UUID, new_job: NewJob) -> dict[str, Any]:
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
        "concurrency_key": spec.concurrency_key,
        "timeout_seconds": spec.timeout_seconds,
        "event_count": 1 if spec.hold else 2,
    }


class SqliteJobStore(SharedJobStatements):
    database: SqliteDatabase

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self.database = database
        q = self.queries
        self._insert_job = q["insert_job"].sql
        self._insert_event = q["insert_event"].sql
        self._complete_job = q["complete_job"].sql
        self._claim_any = q["claim_jobs"].compose(type_condition="")
        self._claim_of_types = q["claim_jobs"].compose(type_condition=q["types_condition"].sql)

    def _event_params(self, row: sqlite3.Row, seq: int, event: NewEvent) -> dict[str, Any]:
        """`insert_event`'s parameters, encoded, for an event of the job in `row` (whose
        values are already as SQLite stores them: nothing to decode)."""
        job = JobRef(row["id"], row["workspace_id"], row["type"])
        return encode_params(event_params(job, seq, event))

    async def _committed(self, work: Batch) -> list[sqlite3.Row]:
        """Run a batch; hand its events to the streams as it commits, even if the caller is
        cancelled meanwhile. Returns the batch's job rows."""

        async def run_and_publish() -> list[sqlite3.Row]:
            async with self.database.batch() as run:
                job_rows, event_rows = await run(work)
            self._published([self.rows.event(row) for row in event_rows])
            return job_rows

        return await asyncio.shield(run_and_publish())

    async def insert_jobs(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], actor: str
    ) -> list[tuple[Job, bool]]:
        batch = [
            (encode_params(_job_values(workspace_id, new_job)), new_job) for new_job in new_jobs
        ]

        def insert(connection: Executor) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
            jobs, written = [], []
            for params, new_job in batch:
                row = connection.execute(self._insert_job, params).fetchone()
                if row is None:
                    continue
                jobs.append(row)
                for seq, event in enumerate(decide_creation_events(new_job.spec, actor), start=1):
                    written.append(
                        connection.execute(
                            self._insert_event, self._event_params(row, seq, event)
                        ).fetchone()
                    )
            return jobs, written

        job_rows = await self._committed(insert)
        created = {job.id: job for job in map(self.rows.job, job_rows)}
        return await self.with_existing(workspace_id, new_jobs, created)

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """The guarded UPDATE, then its events, in one write transaction."""
        guarded = guarded_change(self.queries, workspace_id, change)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(guarded.sql, guarded.params)
            if row is None:
                return None
            job = self.rows.job(row)
            written = await self.insert_events(
                connection, job, job.last_event_seq - len(change.events), change.events
            )
            connection.after_commit(lambda: self._published(written))
        return job

    async def claim_jobs(
        self, workspace_id: UUID, request: ClaimRequest, answer: Projection[Claimed]
    ) -> list[Claimed]:
        types, actor = request.types, request.actor
        sql = self._claim_any if types is None else self._claim_of_types
        params = encode_params(
            {
                "ws": workspace_id,
                "worker_id": request.worker_id,
                "lease": request.lease_seconds,
                "grace": request.timeout_grace_seconds,
                "limit": request.limit,
                **({} if types is None else {"types": list(types)}),
            }
        )

        def claim(connection: Executor) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
            rows = connection.execute(sql, params).fetchall()
            written = [
                connection.execute(
                    self._insert_event,
                    self._event_params(
                        row,
                        row["last_event_seq"],
                        start_event(row["attempt"], row["worker_id"], actor),
                    ),
                ).fetchone()
                for row in rows
            ]
            return rows, written

        claimed = [self.rows.job(row) for row in await self._committed(claim)]
        claimed.sort(key=lambda job: (job.priority, job.run_at, job.id))
        return [answer.from_job(job) for job in claimed]

    async def complete_jobs(
        self,
        workspace_id: UUID,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[Completed]:
        batch = [
            encode_params(
                {
                    "result": Json(completion.result),
                    "job_id": completion.job_id,
                    "ws": workspace_id,
                    "lease_id": completion.lease_id,
                }
            )
            for completion in completions
        ]

        def complete(connection: Executor) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
            done, written = [], []
            for params in batch:
                row = connection.execute(self._complete_job, params).fetchone()
                if row is None:
                    continue
                done.append(row)
                event = completion_event(row["attempt"], actor)
                written.append(
                    connection.execute(
                        self._insert_event, self._event_params(row, row["last_event_seq"], event)
                    ).fetchone()
                )
            return done, written

        return [answer.from_job(self.rows.job(row)) for row in await self._committed(complete)]

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, limit: int
    ) -> WorkspaceEventsPage:
        """One writer commits events in id order (tx 0): every committed event can be
        passed on, and nothing is ever held."""
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["workspace_events_after"].sql,
                {"ws": workspace_id, "tx": after.tx, "id": after.id, "limit": limit},
            )
        events = [self.rows.event(row) for row in rows]
        reached = events[-1].position if events else after
        return WorkspaceEventsPage(events, reached, full=len(events) == limit, held=False)

    async def adopt_foreign_events(self) -> int:
        """Nothing to adopt: SQLite orders events by id alone (tx is always 0)."""
        return 0

    async def events_in_ranges(self, ranges: Sequence[tuple[UUID, int, int]]) -> list[Event]:
        found: list[Event] = []
        sql = self.queries["events_in_range"].sql
        async with self.database.read() as connection:
            for job_id, first, last in ranges:
                rows = await connection.fetch(sql, {"job_id": job_id, "first": first, "last": last})
                found += [self.rows.event(row) for row in rows]
        return sorted(found, key=lambda event: event.id)
