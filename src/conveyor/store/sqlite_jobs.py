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
import functools
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from conveyor.domain.capacity import (
    Candidate,
    Group,
    LimitState,
    admit,
    fair_order,
    limit_names,
    limit_type,
)
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
from conveyor.domain.status import JobStatus
from conveyor.store.changes import guarded_change
from conveyor.store.claims import (
    ClaimOutcome,
    Fitted,
    KeyScan,
    NextLook,
    PlannedWorkspace,
    Took,
    Turns,
    earliest,
    governed,
    keys_to_scan,
    rated_workspaces,
)
from conveyor.store.connection import Json, Row
from conveyor.store.jobs import JobRef, NewJob, SharedJobStatements, event_params
from conveyor.store.projections import Claimed, Completed, Projection
from conveyor.store.queries import Queries
from conveyor.store.sqlite import Executor, SqliteDatabase, encode_params

T = TypeVar("T")
Batch = Callable[[Executor], tuple[T, list[sqlite3.Row]]]
"""A batch's work: its answer, and the event rows it wrote (published as it commits)."""


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Claimed(NamedTuple):
    rows: list[sqlite3.Row]
    wake_in: float | None
    workspaces: tuple[UUID, ...]
    more: bool = False


class _ClaimContext(NamedTuple):
    """What a claim's statements share on the writer's thread: its connection, its
    {type_condition}, its parameters, and the job each key scanned (`claimable_keys`)
    found first: what that key's group picks with a share of one."""

    connection: Executor
    type_condition: str
    params: dict[str, Any]
    first_jobs: Mapping[Group, sqlite3.Row]


def _first_picks(scanned: Mapping[UUID, list[sqlite3.Row]]) -> dict[Group, sqlite3.Row]:
    """Each scanned key's group, with the job its scan found first (`claimable_keys`)."""
    return {
        Group(workspace_id, row["concurrency_key"]): row
        for workspace_id, rows in scanned.items()
        for row in rows
    }


@functools.cache
def _pick_group(queries: Queries, keyed: bool, types: str) -> str:
    """`pick_group` for groups with a key (`:key`) or without."""
    condition = "concurrency_key = :key" if keyed else "concurrency_key IS NULL"
    return queries["pick_group"].compose(group=condition, type_condition=types)


def _leaves(rows: Iterable[Row]) -> list[tuple[str, str, int]]:
    """`completed_leaves`' :leaves for the completed rows: each limit name (of the limited
    ones) with the number of them it loses."""
    counted = Counter(
        (row["workspace_id"], name)
        for row in rows
        if row["limited"]
        for name in limit_names(row["type"], row["concurrency_key"])
    )
    return [(workspace, name, n) for (workspace, name), n in counted.items()]


class SqliteJobStore(SharedJobStatements):
    database: SqliteDatabase

    def __init__(self, database: SqliteDatabase) -> None:
        super().__init__(database)
        self.database = database
        q = self.queries
        self._insert_job = q["insert_job"].sql
        self._insert_event = q["insert_event"].sql
        self._complete_job = q["complete_job"].sql
        self._completed_leaves = q["completed_leaves"].sql
        self._start_jobs = q["start_jobs"].sql

    def _event_params(self, row: sqlite3.Row, seq: int, event: NewEvent) -> dict[str, Any]:
        """`insert_event`'s parameters, encoded, for an event of the job in `row` (whose
        values are already as SQLite stores them: nothing to decode)."""
        job = JobRef(row["id"], row["workspace_id"], row["type"])
        return encode_params(event_params(job, seq, event))

    async def _committed(self, work: Batch[T]) -> T:
        """Run a batch; hand its events to the streams as it commits, even if the caller is
        cancelled meanwhile. Returns the batch's answer."""

        async def run_and_publish() -> T:
            async with self.database.batch() as run:
                answer, event_rows = await run(work)
            self._published([self.rows.event(row) for row in event_rows])
            return answer

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

    async def close(self) -> None:
        """Nothing runs in the background on SQLite."""

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """The guarded UPDATE, then its events, in one write transaction."""
        guarded = guarded_change(self.queries, workspace_id, change)
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(guarded.sql, guarded.params)
            if row is None:
                return None
            if change.target is JobStatus.COMPLETED and (leaves := _leaves([row])):
                await connection.execute(self._completed_leaves, {"leaves": leaves})
            job = self.rows.job(row)
            written = await self.insert_events(
                connection, job, job.last_event_seq - len(change.events), change.events
            )
            connection.after_commit(lambda: self._published(written))
        return job

    async def claim_jobs(
        self, request: ClaimRequest, answer: Projection[Claimed]
    ) -> ClaimOutcome[Claimed]:
        """The whole claim (store/claims.py) as one batch on the writer's thread: one
        writer, so nothing to lock against and nothing to skip."""
        planner = self.planner
        plan_sql, plan_params = planner.plan_statement(request)
        types, type_params = planner.type_condition(request)
        claim_params = {
            "worker_id": request.worker_id,
            "lease": request.lease_seconds,
            "grace": request.timeout_grace_seconds,
            **type_params,
        }

        def next_due(connection: Executor, looked: float) -> float | None:
            """Seconds until the next job of the claim's scope comes due (`next_due`),
            counting those that came due since it looked (`looked`, monotonic)."""
            since = time.monotonic() - looked
            due_sql, due_params = planner.next_due_statement(request, since)
            return planner.wake_in(
                connection.execute(due_sql, encode_params(due_params)).fetchone()
            )

        def claim(connection: Executor) -> tuple[_Claimed, list[sqlite3.Row]]:
            looked = time.monotonic()
            plan = planner.planned(
                connection.execute(plan_sql, encode_params(plan_params)).fetchall()
            )
            if not plan:
                return _Claimed([], next_due(connection, looked), ()), []
            budget = planner.budget(request, plan)
            scanned = {
                workspace.id: self._claimable_keys(
                    connection, workspace.id, request, keys_to_scan(budget)
                )
                for workspace in plan
                if workspace.keyed
            }
            keys = {workspace_id: KeyScan.of(rows) for workspace_id, rows in scanned.items()}
            context = _ClaimContext(connection, types, claim_params, _first_picks(scanned))
            weights = {workspace.id: workspace.weight for workspace in plan}
            turns = planner.split(request, plan, keys, budget)
            if governed(plan):
                rows, (more, wake_in) = self._claim_under_limits(
                    context, request, plan, turns, weights
                )
            else:
                wake_in = None
                rows = self._start_shares(context, turns.shares, False)
                planner.took(request, plan, turns, turns.shares)
                more = turns.more(len(rows), request.limit)
            if not rows and not more:
                # Due jobs it could not start (a limit holds them): it waits, and a job
                # coming due meanwhile must end the wait as when there were none.
                wake_in = earliest(wake_in, next_due(connection, looked))
            written = [
                connection.execute(
                    self._insert_event,
                    self._event_params(
                        row,
                        row["last_event_seq"],
                        start_event(row["attempt"], row["worker_id"], request.actor),
                    ),
                ).fetchone()
                for row in rows
            ]
            return _Claimed(rows, wake_in, tuple(weights), more), written

        claimed = await self._committed(claim)
        jobs = [self.rows.job(row) for row in claimed.rows]
        jobs.sort(key=lambda job: (job.priority, job.run_at, job.id))
        return ClaimOutcome(
            [answer.from_job(job) for job in jobs],
            claimed.wake_in,
            claimed.workspaces,
            claimed.more,
        )

    def _start_shares(
        self, claim: _ClaimContext, shares: Mapping[Group, int], limited: bool
    ) -> list[sqlite3.Row]:
        """Start every job the groups' shares pick (`limited`: under limits, so the jobs a
        limit governs count in them)."""
        picked = self._picked(claim, shares)
        return self._start_listed(claim, [row["id"] for row in picked], limited)

    def _picked(self, claim: _ClaimContext, shares: Mapping[Group, int]) -> list[sqlite3.Row]:
        """What each group's share picks, for one `start_jobs` to start (one writer:
        nothing starts them in between): a share of one, the job its key scan found first;
        else a read (`pick_group`)."""
        rows: list[sqlite3.Row] = []
        shared = encode_params(claim.params)  # SQLite ignores the ones a pick does not name
        for group, share in shares.items():
            first = claim.first_jobs.get(group) if share == 1 else None
            if first is not None:
                rows.append(first)
                continue
            sql, params = self._picks(group, claim.type_condition)
            own = encode_params({**params, "share": share})
            rows += claim.connection.execute(sql, {**shared, **own}).fetchall()
        return rows

    def _start_listed(
        self, claim: _ClaimContext, ids: list[str], limited: bool
    ) -> list[sqlite3.Row]:
        """The jobs of `ids` start, in one statement (`start_jobs`)."""
        if not ids:
            return []
        params = {**claim.params, "ids": ids, "limited": limited}
        return claim.connection.execute(self._start_jobs, encode_params(params)).fetchall()

    def _picks(self, group: Group, types: str) -> tuple[str, dict[str, Any]]:
        """`pick_group` for one group (its `{group}` condition)."""
        keyed = group.concurrency_key is not None
        params = {"key": group.concurrency_key} if keyed else {}
        return _pick_group(self.queries, keyed, types), {**params, "ws": group.workspace_id}

    def _claimable_keys(
        self, connection: Executor, workspace_id: UUID, request: ClaimRequest, most: int
    ) -> list[sqlite3.Row]:
        """Up to `most` keys with claimable jobs, starting after the last one this process
        reached, wrapping round to the first, each with its most urgent due job."""
        sql, types = self.planner.keys_statement(request)
        after = self.planner.keys_after(request, workspace_id)
        params = encode_params({**types, "ws": workspace_id, "max_groups": most, "after": after})
        return connection.execute(sql, params).fetchall()

    def _claim_under_limits(
        self,
        claim: _ClaimContext,
        request: ClaimRequest,
        plan: Sequence[PlannedWorkspace],
        turns: Turns,
        weights: dict[UUID, int],
    ) -> tuple[list[sqlite3.Row], NextLook]:
        """Read the limits that may leave the groups offered less than their shares, fit
        the shares to them (`ClaimPlanner.fit`) and start every job they pick; where a type
        limit may refuse jobs, pick the candidates and start those the domain admits (the
        writer is this batch's alone: nothing can start meanwhile)."""
        planner, connection = self.planner, claim.connection
        limited = [workspace.id for workspace in plan if workspace.limited]
        sql, params = planner.limit_statement(turns, limited)
        rows = connection.execute(sql, encode_params(params)).fetchall()
        counted = planner.starts_statement(rows)
        starts = (
            []
            if counted is None
            else connection.execute(counted[0], encode_params(counted[1])).fetchall()
        )
        states, now = planner.limit_states(rows, starts)
        fitted = self.planner.fit(turns, weights, states, request.limit, now)
        if fitted.final:
            rows = self._start_shares(claim, fitted.shares, True)
            took = Took.fitted(fitted)
        else:
            rows, took = self._start_admitted(claim, request, turns, weights, states, now, fitted)
        rated = any(state.limit.rate is not None for state in states.values())
        started = Counter(
            (UUID(row["workspace_id"]), name)
            for row in (rows if rated else ())
            for name in limit_names(row["type"], row["concurrency_key"])
        )
        for (workspace_id, name), count in started.items():
            state = states.get((workspace_id, name))
            if state is None or state.limit.rate is None:
                continue
            for _ in range(count):
                connection.execute(
                    self.queries["record_start"].sql,
                    encode_params({"ws": workspace_id, "name": name}),
                )
        if forgetting := rated_workspaces(started, states):
            forget, forget_params = planner.forget_statement(forgetting)
            connection.execute(forget, encode_params(forget_params))
        return rows, self.planner.took_limited(request, plan, turns, took, len(rows), now)

    def _start_admitted(
        self,
        claim: _ClaimContext,
        request: ClaimRequest,
        turns: Turns,
        weights: dict[UUID, int],
        states: dict[tuple[UUID, str], LimitState],
        now: datetime | None,
        fitted: Fitted,
    ) -> tuple[list[sqlite3.Row], Took]:
        """Where a type limit may refuse jobs: pick the fitted shares' candidates (none of
        a type limit without room: `not_held_back`), let the domain admit them
        (`fair_order`, `admit`), start those."""
        held, held_params = self.planner.not_held_back(fitted)
        if held:  # a key whose first job is held reads its picks, under the condition
            held_types = {(ws, limit_type(name)) for ws, name in fitted.held_types}
            claim = claim._replace(
                type_condition=f"{claim.type_condition} {held}",
                params={**claim.params, **held_params},
                first_jobs={
                    group: row
                    for group, row in claim.first_jobs.items()
                    if (group.workspace_id, row["type"]) not in held_types
                },
            )
        candidates = [
            Candidate(
                UUID(row["id"]),
                UUID(row["workspace_id"]),
                row["type"],
                row["concurrency_key"],
                row["priority"],
                self.database.codec.timestamp(row["run_at"]),
            )
            for row in self._picked(claim, fitted.shares)
        ]
        ordered = fair_order(candidates, weights, turns.order, turns.served)
        admission = admit(ordered, states, request.limit, now or _EPOCH)
        ids = [str(candidate.id) for candidate in admission.admitted]
        rows = self._start_listed(claim, ids, True)
        return rows, Took.admitted(fitted, ordered, admission)

    async def complete_jobs(
        self,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[Completed]:
        batch = [
            encode_params(
                {
                    "result": Json(completion.result),
                    "job_id": completion.job_id,
                    "ws": completion.workspace_id,
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
            if leaves := _leaves(done):
                connection.execute(self._completed_leaves, encode_params({"leaves": leaves}))
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
