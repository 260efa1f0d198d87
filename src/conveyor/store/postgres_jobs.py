"""`JobStore` on PostgreSQL: each hot path is one statement (postgres.sql says how), so one
round trip and its own transaction.

Its own: `insert_jobs`, `apply_change`, `claim_jobs`, `complete_jobs`,
`workspace_events_after`, `events_in_ranges`, `adopt_foreign_events`.
Shared (`SharedJobStatements`, with postgres.sql's queries where they differ): the rest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from conveyor.domain.capacity import (
    Candidate,
    Group,
    LimitState,
    admit,
    fair_order,
)
from conveyor.domain.events import Event, NewEvent, StreamPosition, WorkspaceEventsPage
from conveyor.domain.jobs import (
    ClaimRequest,
    Completion,
    Job,
    JobChange,
    JobSpec,
    decide_creation_events,
)
from conveyor.domain.status import JobStatus
from conveyor.serialization import dumps
from conveyor.store.changes import guarded_change
from conveyor.store.claims import (
    ClaimOutcome,
    Fitted,
    KeyScan,
    PlannedWorkspace,
    ScopeKey,
    Took,
    Turns,
    earliest,
    governed,
    keys_to_scan,
    rated_workspaces,
)
from conveyor.store.connection import Connection, Json, Row
from conveyor.store.jobs import NewJob, SharedJobStatements
from conveyor.store.postgres import PostgresDatabase
from conveyor.store.projections import Claimed, Completed, Projection
from conveyor.store.queries import PICK_COLUMNS, columns
from conveyor.store.scans_ahead import ScansAhead

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


_CANDIDATE_COLUMNS = columns(PICK_COLUMNS, "j")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _candidate(row: Row) -> Candidate:
    return Candidate(
        row["id"],
        row["workspace_id"],
        row["type"],
        row["concurrency_key"],
        row["priority"],
        row["run_at"],
    )


def _share_params(shares: dict[Group, int]) -> dict[str, Any]:
    """The groups' shares as `group_picks` takes them: groups without a key, and with."""
    free = [(group, share) for group, share in shares.items() if group.concurrency_key is None]
    keyed = [(group, share) for group, share in shares.items() if group.concurrency_key]
    return {
        "free_ws": [group.workspace_id for group, _ in free],
        "free_shares": [share for _, share in free],
        "key_ws": [group.workspace_id for group, _ in keyed],
        "keys": [group.concurrency_key for group, _ in keyed],
        "key_shares": [share for _, share in keyed],
    }


class KeysRead(NamedTuple):
    """A claim's key scans, and whether they were read ahead (`ScansAhead`)."""

    scans: dict[UUID, KeyScan]
    ahead: bool


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
        self._done_leave = q["completed_leaves"].compose(completed="done")
        self._changed_leave = q["completed_leaves"].compose(completed="changed")
        self._no_leaves = q["no_leaves"].sql
        self._scans_ahead = ScansAhead()

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
        origins = [spec.origin for spec in specs]
        same_origin = origins.count(origins[0]) == len(origins)
        if same_origin and not (params["types"] or params["priorities"] or params["retry_ofs"]):
            created_payload = Json(decide_creation_events(specs[0], actor)[0].payload)
        elif any(origin is not None for origin in origins):
            # The per-row payload built in SQL knows nothing of origins (a schedule's
            # tick): such jobs come one per insert, or all alike.
            raise ValueError("jobs with different origins cannot be inserted together")
        params["created_payload"] = created_payload
        if not any(spec.idempotency_key is not None for spec in specs):
            async with self.database.write() as connection:
                row = await connection.fetchrow(self._insert_plain, params)
            self._keys_came(workspace_id, specs)
            assert row is not None
            now = row["created_at"]
            return [
                (new_job.as_created(workspace_id, new_job.spec.run_at or now, now), True)
                for new_job in new_jobs
            ]
        async with self.database.write() as connection:
            rows = await connection.fetch(self._insert_keyed, params)
        self._keys_came(workspace_id, specs)
        by_id = {new_job.id: new_job for new_job in new_jobs}
        created = {
            row["id"]: by_id[row["id"]].as_created(workspace_id, row["run_at"], row["created_at"])
            for row in rows
        }
        return await self.with_existing(workspace_id, new_jobs, created)

    def _keys_came(self, workspace_id: UUID, specs: Sequence[JobSpec]) -> None:
        """Keyed jobs were created: the workspace's next claims scan its keys afresh."""
        if any(spec.concurrency_key is not None for spec in specs):
            self._scans_ahead.forget(workspace_id)

    async def close(self) -> None:
        """Scans read ahead still running stop."""
        await self._scans_ahead.close()

    async def apply_change(self, workspace_id: UUID, change: JobChange) -> Job | None:
        """The guarded UPDATE, its events and, for a completion, the leaves of its job
        (`completed_leaves`) in one statement; a change that limits must not govern
        (`unless_limits`) under the workspace's claim lock, as a claim reads the limits'
        counts and a limit is created under it."""
        guarded = guarded_change(self.queries, workspace_id, change)
        leaves = self._changed_leave if change.target is JobStatus.COMPLETED else self._no_leaves
        sql = self.queries["apply_change_with_events"].compose(change=guarded.sql, leaves=leaves)
        params = {**guarded.params, "events": Json(_event_records(change.events))}
        if not change.unless_limits:
            async with self.database.write() as connection:
                row = await connection.fetchrow(sql, params)
            return None if row is None else self.rows.job(row)
        async with self.database.transaction() as connection:
            await connection.execute(
                self.queries["take_claim_locks"].sql, {"workspaces": [workspace_id], "shared": []}
            )
            row = await connection.fetchrow(sql, params)
        return None if row is None else self.rows.job(row)

    async def claim_jobs(
        self, request: ClaimRequest, answer: Projection[Claimed]
    ) -> ClaimOutcome[Claimed]:
        planner = self.planner
        reused = planner.reusable_plan(request)
        if reused is not None:
            outcome = await self._claim_planned(request, answer, reused)
            if outcome.jobs:
                return outcome
            planner.forget_plan(request)  # its work is gone, or limits came: plan afresh
        async with self.database.write() as connection:
            looked = time.monotonic()
            plan = planner.planned(await connection.fetch(*planner.plan_statement(request)))
            if not plan:
                return ClaimOutcome([], await self._next_due(connection, request, looked))
        planner.remember_plan(request, plan, looked)
        outcome = await self._claim_planned(request, answer, plan)
        if outcome.jobs or outcome.more:
            return outcome
        # Due jobs it could not start (a limit holds them, another claim took them): it
        # waits, and a job coming due meanwhile must end the wait as when there were none.
        async with self.database.read() as connection:
            due = await self._next_due(connection, request, looked)
        return outcome._replace(wake_in=earliest(outcome.wake_in, due))

    async def _next_due(
        self, connection: Connection, request: ClaimRequest, looked: float
    ) -> float | None:
        """Seconds until the next job of the claim's scope comes due (`next_due`), counting
        those that came due since it looked (`looked`, monotonic)."""
        planner = self.planner
        since = time.monotonic() - looked
        return planner.wake_in(
            await connection.fetchrow(*planner.next_due_statement(request, since))
        )

    async def _claim_planned(
        self, request: ClaimRequest, answer: Projection[Claimed], plan: Sequence[PlannedWorkspace]
    ) -> ClaimOutcome[Claimed]:
        """A claim with its plan: under limits, or not; a claim that did not take all it
        asked for lets the next read the plan afresh."""
        if governed(plan):
            outcome = await self._claim_under_limits(request, answer, plan)
        else:
            outcome = await self._claim_unlimited(request, answer, plan)
        if len(outcome.jobs) < request.limit:
            self.planner.forget_plan(request)
        return outcome

    async def _claim_unlimited(
        self,
        request: ClaimRequest,
        answer: Projection[Claimed],
        plan: Sequence[PlannedWorkspace],
    ) -> ClaimOutcome[Claimed]:
        """Every job the groups' shares pick starts, in one statement; none in a workspace
        that limits govern since the plan was read."""
        most = keys_to_scan(request.limit)
        keys = await self._key_scans(plan, request, most)
        turns = self.planner.split(request, plan, keys.scans, request.limit)
        chosen = self.queries["picked_unlimited"].compose(picks=self._group_picks(request, "j.id"))
        async with self.database.write() as connection:
            rows = await connection.fetch(
                self.queries["start_jobs"].compose(chosen=chosen, answer=answer.columns),
                {
                    **self._claim_params(request),
                    **_share_params(turns.shares),
                    "planned": [workspace.id for workspace in plan],
                },
            )
        jobs = [answer.from_row(self.rows, row) for row in rows]
        self.planner.took(request, plan, turns, turns.shares)
        more = turns.more(len(jobs), request.limit)
        outcome = ClaimOutcome(jobs, None, tuple(workspace.id for workspace in plan), more)
        return self._after_claim(plan, request, most, keys, outcome)

    async def _key_scans(
        self, plan: Sequence[PlannedWorkspace], request: ClaimRequest, most: int
    ) -> KeysRead:
        """Each keyed workspace's scan: read ahead by the scope's last claim, else now. Taken
        before the claim holds a connection: scans read ahead may be waiting for one."""
        afters = self._keys_after(plan, request)
        if not afters:
            return KeysRead({}, ahead=False)
        ahead = await self._scans_ahead.take(ScopeKey.of(request), afters, most)
        if ahead is not None:
            return KeysRead(ahead, ahead=True)
        return KeysRead(await self._scan_keys(request, afters, most), ahead=False)

    def _after_claim(
        self,
        plan: Sequence[PlannedWorkspace],
        request: ClaimRequest,
        most: int,
        keys: KeysRead,
        outcome: ClaimOutcome[Claimed],
    ) -> ClaimOutcome[Claimed]:
        """After a claim that started every job it asked for: read its scope's next key
        scans now (`ScansAhead`). One that started fewer drops them; if it took scans read
        ahead, it looks again at once, with fresh ones (they may have missed a key)."""
        scope = ScopeKey.of(request)
        if len(outcome.jobs) < request.limit:
            self._scans_ahead.forget_scope(scope)
            return outcome._replace(more=True) if keys.ahead else outcome
        afters = self._keys_after(plan, request)
        if afters:
            self._scans_ahead.start(scope, afters, most, self._scan_keys(request, afters, most))
        return outcome

    def _keys_after(
        self, plan: Sequence[PlannedWorkspace], request: ClaimRequest
    ) -> dict[UUID, str]:
        """Where each keyed workspace's key scan starts: after its scope's last turn."""
        return {
            workspace.id: self.planner.keys_after(request, workspace.id)
            for workspace in plan
            if workspace.keyed
        }

    async def _scan_keys(
        self, request: ClaimRequest, afters: Mapping[UUID, str], most: int
    ) -> dict[UUID, KeyScan]:
        """The key scans of the workspaces of `afters`, each from its point, in one
        statement (`claimable_keys_of_workspaces`)."""
        scan, types = self.planner.keys_statement(request, ws="g.ws", after="g.after")
        sql = self.queries["claimable_keys_of_workspaces"].compose(scan=scan)
        params = {
            **types,
            "workspaces": list(afters),
            "afters": list(afters.values()),
            "max_groups": most,
        }
        async with self.database.read() as connection:
            rows = await connection.fetch(sql, params)
        found: dict[UUID, list[Row]] = {workspace_id: [] for workspace_id in afters}
        for row in rows:
            found[self.database.codec.uuid(row["workspace_id"])].append(row)
        return {workspace_id: KeyScan.of(scanned) for workspace_id, scanned in found.items()}

    async def _claim_under_limits(
        self,
        request: ClaimRequest,
        answer: Projection[Claimed],
        plan: Sequence[PlannedWorkspace],
    ) -> ClaimOutcome[Claimed]:
        """Under the claim locks of the limited workspaces: read the limits that may
        leave the groups offered less than their shares, fit the shares to them
        (`ClaimPlanner.fit`) and start every job they pick, in one statement; where a type
        limit may refuse jobs, pick the candidates and start those the domain admits
        (`_start_admitted`). The counts read may still hold jobs that left since
        the last fold (`fold_limit_leaves`): a claim they cap folds and reads again, so a
        limit holds back only what really runs (and every `FOLD_SECONDS` a claim folds
        anyway, so the leaves stay few). A workspace the plan found without limits is
        locked shared: if one has come to it since, the claim plans afresh."""
        planner, q = self.planner, self.queries
        limited = sorted(workspace.id for workspace in plan if workspace.limited)
        weights = {workspace.id: workspace.weight for workspace in plan}
        budget = planner.budget(request, plan)
        most = keys_to_scan(budget)
        keys = await self._key_scans(plan, request, most)  # not under the locks: reads only
        turns = planner.split(request, plan, keys.scans, budget)
        unlimited = sorted(set(weights) - set(limited))
        async with self.database.transaction() as connection:
            await connection.execute(
                q["take_claim_locks"].sql, {"workspaces": limited, "shared": unlimited}
            )
            if unlimited:
                came = await connection.fetchrow(q["limits_came"].sql, {"workspaces": unlimited})
                if came is not None and came["came"]:
                    planner.forget_plan(request)
                    return ClaimOutcome([], None, tuple(weights), more=True)
            states, now = await self._limit_states(connection, turns, limited)
            fitted = planner.fit(turns, weights, states, request.limit, now)
            to_fold = limited if fitted.capped else planner.unfolded(limited)
            if to_fold:
                await connection.execute(q["fold_limit_leaves"].sql, {"workspaces": to_fold})
            planner.folded(to_fold)
            if fitted.capped:  # the counts may have held jobs that left: read them again
                states, now = await self._limit_states(connection, turns, limited)
                fitted = planner.fit(turns, weights, states, request.limit, now)
            if fitted.final:
                chosen = q["picked_limited"].compose(picks=self._group_picks(request, "j.id"))
                rows = await connection.fetch(
                    q["start_jobs"].compose(chosen=chosen, answer=answer.columns),
                    {**self._claim_params(request), **_share_params(fitted.shares)},
                )
                took = Took.fitted(fitted)
                counted = fitted.key_limits()
            else:
                rows, took, counted = await self._start_admitted(
                    connection, request, answer, turns, weights, states, now, fitted
                )
            jobs = [answer.from_row(self.rows, row) for row in rows]
            if rated := rated_workspaces(counted, states):
                await connection.execute(*planner.forget_statement(rated))
        more, wake_in = planner.took_limited(request, plan, turns, took, len(jobs), now)
        outcome = ClaimOutcome(jobs, wake_in, tuple(weights), more)
        return self._after_claim(plan, request, most, keys, outcome)

    async def _start_admitted(
        self,
        connection: Connection,
        request: ClaimRequest,
        answer: Projection[Claimed],
        turns: Turns,
        weights: dict[UUID, int],
        states: dict[tuple[UUID, str], LimitState],
        now: datetime | None,
        fitted: Fitted,
    ) -> tuple[list[Row], Took, list[tuple[UUID, str]]]:
        """Where a type limit may refuse jobs: pick the fitted shares' candidates, let the
        domain admit them (`fair_order`, `admit`), start those. Answers the rows started,
        what the claim took, and the limits its starts count in."""
        held, held_params = self.planner.not_held_back(fitted)
        picked = await connection.fetch(
            self._group_picks(request, _CANDIDATE_COLUMNS, held),
            {**self._claim_params(request), **_share_params(fitted.shares), **held_params},
        )
        ordered = fair_order(
            [_candidate(row) for row in picked], weights, turns.order, turns.served
        )
        admission = admit(ordered, states, request.limit, now or _EPOCH)
        rows: list[Row] = []
        if admission.admitted:
            rows = await connection.fetch(
                self.queries["start_jobs"].compose(
                    chosen=self.queries["admitted"].sql, answer=answer.columns
                ),
                {
                    **self._claim_params(request),
                    "ids": [candidate.id for candidate in admission.admitted],
                },
            )
        return rows, Took.admitted(fitted, ordered, admission), list(admission.starts)

    async def _limit_states(
        self, connection: Connection, turns: Turns, workspaces: Sequence[UUID]
    ) -> tuple[dict[tuple[UUID, str], LimitState], datetime | None]:
        """The limits that may leave a group offered less than its share, every type limit,
        and the database's now: every workspace's in one statement (and their rates' starts
        in one more)."""
        planner = self.planner
        rows = await connection.fetch(*planner.limit_statement(turns, workspaces))
        counted = planner.starts_statement(rows)
        starts = [] if counted is None else await connection.fetch(*counted)
        return planner.limit_states(rows, starts)

    def _group_picks(self, request: ClaimRequest, columns: str, held: str = "") -> str:
        """`group_picks` of the types the claim takes, leaving out those `held`
        (`not_held_back`)."""
        types, _ = self.planner.type_condition(request)
        return self.queries["group_picks"].compose(
            columns=columns, type_condition=f"{types} {held}"
        )

    def _claim_params(self, request: ClaimRequest) -> dict[str, Any]:
        _, types = self.planner.type_condition(request)
        return {
            "worker_id": request.worker_id,
            "lease": float(request.lease_seconds),
            "grace": float(request.timeout_grace_seconds),
            "actor": request.actor,
            **types,
        }

    async def complete_jobs(
        self,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[Completed]:
        records = [
            {
                "id": str(c.job_id),
                "workspace_id": str(c.workspace_id),
                "lease_id": str(c.lease_id),
                "result": c.result,
            }
            for c in completions
        ]
        async with self.database.write() as connection:
            rows = await connection.fetch(
                self.queries["complete_jobs"].compose(
                    answer=answer.columns, leaves=self._done_leave
                ),
                {"completions": Json(records), "actor": actor},
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
