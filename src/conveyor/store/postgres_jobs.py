"""`JobStore` on PostgreSQL: each hot path is one statement (postgres.sql says how), so one
round trip and its own transaction.

Its own: `insert_jobs`, `apply_change`, `claim_jobs`, `complete_jobs`,
`workspace_events_after`, `events_in_ranges`, `adopt_foreign_events`.
Shared (`SharedJobStatements`, with postgres.sql's queries where they differ): the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from conveyor.domain.events import Event, NewEvent, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import ClaimRequest, Completion, Job, JobChange, decide_creation_events
from conveyor.serialization import dumps
from conveyor.store.changes import guarded_change
from conveyor.store.connection import Json
from conveyor.store.jobs import NewJob, SharedJobStatements
from conveyor.store.postgres import PostgresDatabase
from conveyor.store.projections import Claimed, Completed, Projection

_ADOPTION_LOCK = 0x636F6E76  # pg_advisory_xact_lock key: one server adopts, others wait
_ADOPTION_TIMEOUT_SECONDS = 24 * 3600.0


def _event_records(change_events: Sequence[NewEvent]) -> list[dict[str, Any]]:
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


def _column(values: list[Any]) -> tuple[list[Any], Any]:
    """One column of `insert_jobs`: `([], value)` when every job has that value, so it is
    sent once, else `(values, None)`."""
    first = values[0] if values else None
    if values.count(first) == len(values):
        return [], first
    return values, None


class PostgresJobStore(SharedJobStatements):
    database: PostgresDatabase

    def __init__(self, database: PostgresDatabase) -> None:
        super().__init__(database)
        self.database = database
        q = self.queries
        self._insert_plain = q["insert_jobs"].compose(
            on_conflict="", answer=q["answer_creation_time"].sql
        )
        self._insert_keyed = q["insert_jobs"].compose(
            on_conflict=q["skip_known_idempotency_keys"].sql,
            answer=q["answer_inserted_jobs"].sql,
        )
        self._types_condition = q["types_condition"].sql

    async def insert_jobs(
        self, workspace_id: UUID, new_jobs: Sequence[NewJob], actor: str
    ) -> list[tuple[Job, bool]]:
        """One statement for any number of jobs: typed arrays in, the database's clock out
        (the rest of each job is what was sent)."""
        if not new_jobs:
            return []
        specs = [new_job.spec for new_job in new_jobs]
        params: dict[str, Any] = {
            "ws": workspace_id,
            "actor": actor,
            "ids": [new_job.id for new_job in new_jobs],
        }
        for each, shared, values in (
            ("types", "type", [spec.type for spec in specs]),
            ("statuses", "status", [new_job.status for new_job in new_jobs]),  # a StrEnum
            ("priorities", "priority", [spec.priority for spec in specs]),
            ("payloads", "payload", [dumps(spec.payload).decode() for spec in specs]),
            ("agent_task_ids", "agent_task_id", [spec.agent_task_id for spec in specs]),
            ("max_attempts_each", "max_attempts", [spec.max_attempts for spec in specs]),
            ("run_ats", "run_at", [spec.run_at for spec in specs]),
            ("keys", "key", [spec.idempotency_key for spec in specs]),
            ("retry_ofs", "retry_of", [spec.retry_of for spec in specs]),
            ("backoffs", "backoff", [spec.retry_backoff_seconds for spec in specs]),
            ("backoff_maxes", "backoff_max", [spec.retry_backoff_max_seconds for spec in specs]),
            ("concurrency_keys", "concurrency_key", [spec.concurrency_key for spec in specs]),
            ("timeouts", "timeout_seconds", [spec.timeout_seconds for spec in specs]),
        ):
            params[each], params[shared] = _column(values)
        # Jobs of one type, priority and origin have the same job.created payload: sent
        # once, as the domain words it, instead of built for every row.
        created_payload = None
        if not (params["types"] or params["priorities"] or params["retry_ofs"]):
            created_payload = Json(decide_creation_events(specs[0], actor)[0].payload)
        params["created_payload"] = created_payload
        if not any(spec.idempotency_key is not None for spec in specs):
            async with self.database.write() as connection:
                row = await connection.fetchrow(self._insert_plain, params)
            assert row is not None
            now = row["created_at"]
            return [
                (new_job.as_created(workspace_id, new_job.spec.run_at or now, now), True)
                for new_job in new_jobs
            ]
        async with self.database.write() as connection:
            rows = await connection.fetch(self._insert_keyed, params)
        by_id = {new_job.id: new_job for new_job in new_jobs}
        created = {
            row["id"]: by_id[row["id"]].as_created(workspace_id, row["run_at"], row["created_at"])
            for row in rows
        }
        return await self.with_existing(workspace_id, new_jobs, created)

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """The guarded UPDATE and its events in one statement."""
        guarded = guarded_change(self.queries, workspace_id, change)
        sql, params = guarded.sql, guarded.params
        if change.events:
            sql = self.queries["apply_change_with_events"].compose(change=guarded.sql)
            params["events"] = Json(_event_records(change.events))
        async with self.database.write() as connection:
            row = await connection.fetchrow(sql, params)
        return None if row is None else self.rows.job(row)

    async def claim_jobs(
        self, workspace_id: UUID, request: ClaimRequest, answer: Projection[Claimed]
    ) -> list[Claimed]:
        params: dict[str, Any] = {
            "ws": workspace_id,
            "limit": request.limit,
            "worker_id": request.worker_id,
            "lease": float(request.lease_seconds),
            "grace": float(request.timeout_grace_seconds),
            "actor": request.actor,
        }
        type_condition = ""
        if request.types is not None:
            params["types"] = list(request.types)
            type_condition = self._types_condition
        sql = self.queries["claim_jobs"].compose(
            type_condition=type_condition, answer=answer.columns
        )
        async with self.database.write() as connection:
            rows = await connection.fetch(sql, params)
        return [answer.from_row(self.rows, row) for row in rows]

    async def complete_jobs(
        self,
        workspace_id: UUID,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[Completed]:
        records = [
            {"id": str(c.job_id), "lease_id": str(c.lease_id), "result": c.result}
            for c in completions
        ]
        async with self.database.write() as connection:
            rows = await connection.fetch(
                self.queries["complete_jobs"].compose(answer=answer.columns),
                {"completions": Json(records), "ws": workspace_id, "actor": actor},
            )
        return [answer.from_row(self.rows, row) for row in rows]

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, limit: int
    ) -> WorkspaceEventsPage:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["workspace_events_after"].sql,
                {"ws": workspace_id, "tx": after.tx, "id": after.id, "limit": limit},
            )
        events = [self.rows.event(row) for row in rows if row["id"] is not None]
        full = len(events) == limit
        horizon = StreamPosition(rows[0]["horizon"], 0)
        reached = events[-1].position if full else max(after, horizon)
        return WorkspaceEventsPage(events, reached, full=full, held=bool(rows[0]["held"]))

    async def adopt_foreign_events(self) -> int:
        """After a restore onto another server (`foreign_events_exist`), put every event
        back at tx 1, once; returns how many moved (0 but after such a restore)."""
        found = self.queries["foreign_events_exist"].sql
        async with self.database.read() as connection:
            row = await connection.fetchrow(found)
        if row is None or not row["found"]:
            return 0
        async with self.database.transaction() as connection:
            await connection.execute(
                self.queries["take_adoption_lock"].sql, {"lock": _ADOPTION_LOCK}
            )
            await connection.execute(self.queries["no_statement_timeout"].sql)
            again = await connection.fetchrow(found)
            if again is None or not again["found"]:
                return 0  # another server adopted them while this one waited
            return await connection.execute_counting(
                self.queries["adopt_all_events"].sql, limit_seconds=_ADOPTION_TIMEOUT_SECONDS
            )

    async def events_in_ranges(self, ranges: Sequence[tuple[UUID, int, int]]) -> list[Event]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["events_in_ranges"].sql,
                {
                    "job_ids": [job_id for job_id, _, _ in ranges],
                    "firsts": [first for _, first, _ in ranges],
                    "lasts": [last for _, _, last in ranges],
                },
            )
        return [self.rows.event(row) for row in rows]
