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

from conveyor.domain.events import Event, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import (
    CLAIMABLE_STATUS,
    ClaimedJob,
    ClaimRequest,
    CompletedJob,
    Completion,
    Job,
    JobChange,
    JobStatus,
    decide_creation_events,
)
from conveyor.serialization import dumps
from conveyor.store.connection import Json, Row
from conveyor.store.jobs import EVENT_COLUMNS, JOB_COLUMNS, JobStore, NewJob
from conveyor.store.postgres import PostgresDatabase

_EVENT_COLUMNS_OF_E = ", ".join("e." + column.strip() for column in EVENT_COLUMNS.split(","))
_EVENT_RECORD = "e(n int, type text, actor text, payload jsonb, step_id uuid)"
_INSERT_EVENT_COLUMNS = (
    "INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload, "
    "created_at)"
)

# The creation events are written by SQL from the inserted rows, exactly as
# `decide_creation_events` words them (a test compares the two stores' events).
# Each column comes either as one value per job or, when every job of the batch has the
# same value, once (`_column`): the per-job array is then empty, unnest pads it with NULL
# and COALESCE takes the shared value. A bulk create of uniform jobs sends two arrays
# (ids, payloads) instead of twelve; the driver's and the database's cost grows with elements.
# `on_conflict` is there only when a job of the batch carries an idempotency key:
# ON CONFLICT makes every row a speculative insertion, which costs even rows without one.
_INSERT_JOBS = f"""
WITH inserted AS (
    INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error,
        progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key,
        worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds,
        retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at,
        version, last_event_seq, last_step_ordinal)
    SELECT j.id, :ws, j.type, j.status, j.priority, j.payload::jsonb, NULL, NULL, 0,
        j.agent_task_id, 1, j.max_attempts, COALESCE(j.run_at, now()), j.idempotency_key,
        NULL, NULL, NULL, j.retry_of, j.backoff, j.backoff_max, now(), NULL, NULL, now(), 1,
        CASE WHEN j.status = 'QUEUED' THEN 2 ELSE 1 END, 0
    FROM (
        SELECT j.id, COALESCE(j.type, :type::text) AS type,
            COALESCE(j.status, :status::text) AS status,
            COALESCE(j.priority, :priority::smallint) AS priority,
            COALESCE(j.payload, :payload::text) AS payload,
            COALESCE(j.agent_task_id, :agent_task_id::text) AS agent_task_id,
            COALESCE(j.max_attempts, :max_attempts::int) AS max_attempts,
            COALESCE(j.run_at, :run_at::timestamptz) AS run_at,
            COALESCE(j.idempotency_key, :key::text) AS idempotency_key,
            COALESCE(j.retry_of, :retry_of::uuid) AS retry_of,
            COALESCE(j.backoff, :backoff::float8) AS backoff,
            COALESCE(j.backoff_max, :backoff_max::float8) AS backoff_max
        FROM unnest(:ids::uuid[], :types::text[], :statuses::text[], :priorities::smallint[],
            :payloads::text[], :agent_task_ids::text[], :max_attempts_each::int[],
            :run_ats::timestamptz[], :keys::text[], :retry_ofs::uuid[], :backoffs::float8[],
            :backoff_maxes::float8[])
            AS j(id, type, status, priority, payload, agent_task_id, max_attempts, run_at,
                idempotency_key, retry_of, backoff, backoff_max)
    ) j
    {{on_conflict}}
    RETURNING id, type, status, priority, retry_of, run_at, created_at
), created_events AS (
    {_INSERT_EVENT_COLUMNS}
    SELECT id, :ws, type, 1, NULL::uuid, 'job.created', :actor,
        COALESCE(:created_payload::jsonb,
            jsonb_build_object('type', type, 'priority', priority, 'retry_of', retry_of)),
        now()
    FROM inserted
    UNION ALL
    SELECT id, :ws, type, 2, NULL::uuid, 'job.queued', :actor, '{{{{"attempt": 1}}}}'::jsonb, now()
    FROM inserted WHERE status = 'QUEUED'
)
{{answer}}
"""
# Without idempotency keys every row is inserted, stamped with the transaction's now():
# that one value is the whole answer. With keys, the rows that were inserted say which.
_INSERT_JOBS_PLAIN = _INSERT_JOBS.format(on_conflict="", answer="SELECT now() AS created_at")
_INSERT_JOBS_KEYED = _INSERT_JOBS.format(
    on_conflict="ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL "
    "DO NOTHING",
    answer="SELECT id, run_at, created_at FROM inserted",
)

_CLAIM = f"""
WITH picked AS (
    SELECT id FROM jobs
    WHERE workspace_id = :ws AND status = '{CLAIMABLE_STATUS.value}' AND run_at <= now()
        {{type_condition}}
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
SELECT {{answer}} FROM claimed ORDER BY priority, run_at, id
"""

_COMPLETE = f"""
WITH input AS (
    SELECT * FROM jsonb_to_recordset(:completions::jsonb) AS c(id uuid, lease_id uuid, result jsonb)
), done AS (
    UPDATE jobs SET status = 'COMPLETED', result = input.result, error = NULL,
        progress_percent = 100, lease_expires_at = NULL, completed_at = now(), updated_at = now(),
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
SELECT {{answer}} FROM done
"""
_CLAIMED_JOB_COLUMNS = ", ".join(ClaimedJob._fields)
_COMPLETE_ANSWERING_JOBS = _COMPLETE.format(answer=JOB_COLUMNS)
_COMPLETE_ANSWERING_BRIEFLY = _COMPLETE.format(answer=", ".join(CompletedJob._fields))


# A workspace's events in (tx, id) order, up to the horizon: the oldest transaction still
# running. Every transaction below it has ended, so nothing can commit behind what this
# returns; events of younger transactions wait (`held`) until the older ones are done.
# The horizon comes from the statement's own snapshot, the one the page is read with.
_WORKSPACE_EVENTS = f"""
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)
SELECT horizon.tx AS horizon,
    EXISTS (SELECT 1 FROM events WHERE workspace_id = :ws AND tx >= horizon.tx) AS held,
    page.*
FROM horizon LEFT JOIN LATERAL (
    SELECT {EVENT_COLUMNS} FROM events
    WHERE workspace_id = :ws AND (tx, id) > (:tx, :id) AND tx < horizon.tx
    ORDER BY tx, id LIMIT :limit
) page ON true
ORDER BY page.tx, page.id
"""

# The newest event below the horizon: a stream starting after it misses nothing committed
# from now on, and a client told its id resumes exactly there.
_LAST_PASSABLE_EVENT = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)
SELECT last.tx, last.id FROM horizon CROSS JOIN LATERAL (
    SELECT tx, id FROM events WHERE workspace_id = :ws AND tx < horizon.tx
    ORDER BY tx DESC, id DESC LIMIT 1
) last
"""

# Transaction ids belong to one PostgreSQL server. Events restored onto another keep the
# old server's, which may lie beyond any this one has handed out: such an event would never
# pass the horizon, and events written here would sort before it. Found by one index probe
# per workspace.
_FOREIGN_EVENTS_EXIST = """
SELECT EXISTS (
    SELECT 1 FROM workspaces CROSS JOIN LATERAL (
        SELECT 1 FROM events
        WHERE events.workspace_id = workspaces.id
            AND events.tx >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
        LIMIT 1
    ) foreign_event
) AS found
"""
# Then every event goes back to tx 1, as migration 0009 left them: in id order, before
# anything written from now on. All of them, in one transaction: moving only the foreign
# ones would put them before the rest, and a client's resume point would skip or repeat.
_ADOPT_ALL_EVENTS = "UPDATE events SET tx = 1 WHERE tx <> 1"
_ADOPTION_LOCK = 0x636F6E76  # pg_advisory_xact_lock key: one server adopts, others wait
_ADOPTION_TIMEOUT_SECONDS = 24 * 3600.0


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


_STATUSES = {status.value: status for status in JobStatus}


def _column(values: list[Any]) -> tuple[list[Any], Any]:
    """One column of `_INSERT_JOBS`: `([], value)` when every job has that value, so it is
    sent once, else `(values, None)`."""
    first = values[0] if values else None
    if values.count(first) == len(values):
        return [], first
    return values, None


class PostgresJobStore(JobStore):
    def job_from_row(self, row: Row) -> Job:
        """Positional: asyncpg already gives every column its Python type, in the order of
        JOB_COLUMNS, which is the order of Job's fields. The hottest decode there is."""
        record: Any = row  # an asyncpg Record: positional access and slices
        return Job(record[0], record[1], record[2], _STATUSES[record[3]], *record[4:])

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
                row = await connection.fetchrow(_INSERT_JOBS_PLAIN, params)
            assert row is not None
            now = row["created_at"]
            return [
                (new_job.as_created(workspace_id, new_job.spec.run_at or now, now), True)
                for new_job in new_jobs
            ]
        async with self.database.write() as connection:
            rows = await connection.fetch(_INSERT_JOBS_KEYED, params)
        by_id = {new_job.id: new_job for new_job in new_jobs}
        created = {
            row["id"]: by_id[row["id"]].as_created(workspace_id, row["run_at"], row["created_at"])
            for row in rows
        }
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

    async def claim_jobs(self, workspace_id: UUID, request: ClaimRequest) -> list[Job]:
        rows = await self._claim(JOB_COLUMNS, workspace_id, request)
        return [self.job_from_row(row) for row in rows]

    async def claim_jobs_briefly(
        self, workspace_id: UUID, request: ClaimRequest
    ) -> list[ClaimedJob]:
        rows: list[Any] = await self._claim(_CLAIMED_JOB_COLUMNS, workspace_id, request)
        return [ClaimedJob(*row) for row in rows]  # asyncpg records, in the fields' order

    async def _claim(self, answer: str, workspace_id: UUID, request: ClaimRequest) -> list[Row]:
        types = request.types
        params: dict[str, Any] = {
            "ws": workspace_id,
            "limit": request.limit,
            "worker_id": request.worker_id,
            "lease": float(request.lease_seconds),
            "actor": request.actor,
        }
        if types is not None:
            params["types"] = list(types)
        sql = _CLAIM.format(
            type_condition="" if types is None else "AND type = ANY(:types)", answer=answer
        )
        async with self.database.write() as connection:
            return await connection.fetch(sql, params)

    async def complete_jobs(
        self, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[Job]:
        rows = await self._complete(_COMPLETE_ANSWERING_JOBS, workspace_id, completions, actor)
        return [self.job_from_row(row) for row in rows]

    async def complete_jobs_briefly(
        self, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[CompletedJob]:
        rows = await self._complete(_COMPLETE_ANSWERING_BRIEFLY, workspace_id, completions, actor)
        return [
            CompletedJob(row["id"], row["type"], row["started_at"], row["completed_at"])
            for row in rows
        ]

    async def _complete(
        self, sql: str, workspace_id: UUID, completions: Sequence[Completion], actor: str
    ) -> list[Row]:
        records = [
            {"id": str(c.job_id), "lease_id": str(c.lease_id), "result": c.result}
            for c in completions
        ]
        async with self.database.write() as connection:
            return await connection.fetch(
                sql, {"completions": Json(records), "ws": workspace_id, "actor": actor}
            )

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, limit: int
    ) -> WorkspaceEventsPage:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                _WORKSPACE_EVENTS,
                {"ws": workspace_id, "tx": after.tx, "id": after.id, "limit": limit},
            )
        events = [self.event_from_row(row) for row in rows if row["id"] is not None]
        full = len(events) == limit
        horizon = StreamPosition(rows[0]["horizon"], 0)
        reached = events[-1].position if full else max(after, horizon)
        return WorkspaceEventsPage(events, reached, full=full, held=bool(rows[0]["held"]))

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        async with self.database.read() as connection:
            row = await connection.fetchrow(_LAST_PASSABLE_EVENT, {"ws": workspace_id})
        return StreamPosition(0, 0) if row is None else StreamPosition(row["tx"], row["id"])

    async def adopt_foreign_events(self) -> int:
        """After a restore onto another server (`_FOREIGN_EVENTS_EXIST`), put every event
        back at tx 1, once; returns how many moved (0 but after such a restore)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(_FOREIGN_EVENTS_EXIST)
        if row is None or not row["found"]:
            return 0
        assert isinstance(self.database, PostgresDatabase)
        # Rewriting every event of a large database takes longer than a statement may.
        async with self.database.pool.acquire() as raw, raw.transaction():
            await raw.execute("SELECT pg_advisory_xact_lock($1)", _ADOPTION_LOCK)
            await raw.execute("SET LOCAL statement_timeout = 0")
            if not await raw.fetchval(_FOREIGN_EVENTS_EXIST):
                return 0  # another server adopted them while this one waited
            status = await raw.execute(_ADOPT_ALL_EVENTS, timeout=_ADOPTION_TIMEOUT_SECONDS)
        return int(status.rsplit(" ", 1)[-1])

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
