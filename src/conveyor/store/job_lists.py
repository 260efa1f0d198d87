"""Job lists in the database: filtered pages (by offset or by cursor), totals that stay
cheap however long the history, and the jobs a bulk action works through next.

The same code on both databases with each one's queries (shared.sql, and postgres.sql's
`estimate_jobs`: PostgreSQL's planner estimates a total past the exact count's bound,
SQLite has no statistics to estimate from).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from conveyor.domain.idempotency import RETRY_KEY_PREFIX
from conveyor.domain.job_lists import (
    EXACT_TOTAL_LIMIT,
    BulkAction,
    JobFilter,
    ListCursor,
    Total,
    list_total,
)
from conveyor.domain.jobs import Job
from conveyor.store.connection import Connection, Database
from conveyor.store.queries import (
    SETTLED_STATUSES,
    queries_for,
    settled_condition,
    status_condition,
)
from conveyor.store.rows import Rows


class JobListStore:
    """Lists by status go one status at a time: each final status is a range of the status
    index, queued and running jobs have their partial indexes, and a mix of statuses has no
    index of its own (PostgreSQL read the whole table to find the queued and running jobs
    of a workspace among millions of finished ones). The parts are merged in list order."""

    def __init__(self, database: Database, *, exact_total_limit: int = EXACT_TOTAL_LIMIT) -> None:
        self.database = database
        self.exact_total_limit = exact_total_limit
        self.queries = queries_for(database.dialect)
        self.rows = Rows(database.codec)

    async def page(
        self,
        workspace_id: UUID,
        job_filter: JobFilter,
        *,
        cursor: ListCursor | None,
        offset: int,
        limit: int,
    ) -> tuple[list[Job], Total]:
        """One page of the list, newest first (after `cursor`, or `offset` jobs in), and
        the list's total."""
        parts = [self._where(workspace_id, part) for part in _by_status(job_filter)]
        async with self.database.read() as connection:
            jobs = await self._merged(connection, parts, cursor, offset, limit)
            total = await self._total(connection, parts)
        return jobs, total

    async def for_action(
        self,
        workspace_id: UUID,
        action: BulkAction,
        job_filter: JobFilter,
        *,
        cursor: ListCursor | None,
        limit: int,
    ) -> list[Job]:
        """The next jobs (in list order, after `cursor`) a bulk action may change: the
        filter's jobs in a status the action applies to, and for a retry only jobs not run
        again yet."""
        parts = self._action_parts(workspace_id, action, job_filter)
        if not parts:
            return []
        async with self.database.read() as connection:
            return await self._merged(connection, parts, cursor, 0, limit)

    async def count_for_action(
        self, workspace_id: UUID, action: BulkAction, job_filter: JobFilter
    ) -> Total:
        """How many jobs a bulk action could still change (exact up to the bound)."""
        parts = self._action_parts(workspace_id, action, job_filter)
        if not parts:
            return Total(0, False)
        async with self.database.read() as connection:
            return await self._total(connection, parts)

    # -- the statements --------------------------------------------------------------------

    async def _merged(
        self,
        connection: Connection,
        parts: list[tuple[str, dict[str, Any]]],
        cursor: ListCursor | None,
        offset: int,
        limit: int,
    ) -> list[Job]:
        if len(parts) == 1:
            where, params = parts[0]
            return await self._jobs(connection, where, params, cursor, offset, limit)
        found: list[Job] = []
        for where, params in parts:
            found += await self._jobs(connection, where, params, cursor, 0, offset + limit)
        found.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        return found[offset : offset + limit]

    async def _jobs(
        self,
        connection: Connection,
        where: str,
        params: dict[str, Any],
        cursor: ListCursor | None,
        offset: int,
        limit: int,
    ) -> list[Job]:
        after = ""
        query_params = {**params, "limit": limit, "offset": offset}
        if cursor is not None:
            after = self.queries["after_cursor"].sql
            query_params.update(cursor_id=cursor.id, cursor_created_at=cursor.created_at)
        rows = await connection.fetch(
            self.queries["list_jobs_page"].compose(conditions=where, after=after), query_params
        )
        return [self.rows.job(row) for row in rows]

    async def _total(
        self, connection: Connection, parts: list[tuple[str, dict[str, Any]]]
    ) -> Total:
        totals = [await self._part_total(connection, where, params) for where, params in parts]
        return Total(sum(t.count for t in totals), any(t.is_estimate for t in totals))

    async def _part_total(
        self, connection: Connection, where: str, params: dict[str, Any]
    ) -> Total:
        row = await connection.fetchrow(
            self.queries["count_jobs_bounded"].compose(conditions=where),
            {**params, "bound": self.exact_total_limit + 1},
        )
        counted = int(row["total"]) if row is not None else 0
        estimate = None
        if counted > self.exact_total_limit and "estimate_jobs" in self.queries:
            plan_row = await connection.fetchrow(
                self.queries["estimate_jobs"].compose(conditions=where), params
            )
            estimate = _planned_rows(plan_row["QUERY PLAN"]) if plan_row is not None else None
        return list_total(counted, estimate, self.exact_total_limit)

    def _where(
        self, workspace_id: UUID, job_filter: JobFilter, *more: str
    ) -> tuple[str, dict[str, Any]]:
        conditions, params = filter_conditions(job_filter)
        params["ws"] = workspace_id
        return " AND ".join(["workspace_id = :ws", *conditions, *more]), params

    def _action_parts(
        self, workspace_id: UUID, action: BulkAction, job_filter: JobFilter
    ) -> list[tuple[str, dict[str, Any]]]:
        narrowed = job_filter.narrowed_to(action.applies_to)
        if narrowed is None:
            return []
        parts = []
        for part in _by_status(narrowed):
            if action is BulkAction.RETRY:
                where, params = self._where(workspace_id, part, self.queries["not_yet_retried"].sql)
                params["retry_key_prefix"] = RETRY_KEY_PREFIX
                parts.append((where, params))
            else:
                parts.append(self._where(workspace_id, part))
        return parts


def _by_status(job_filter: JobFilter) -> list[JobFilter]:
    """The filter as one part per status it names (one part if it names one or none)."""
    if len(job_filter.statuses) <= 1:
        return [job_filter]
    return [
        replace(job_filter, statuses=frozenset({status})) for status in sorted(job_filter.statuses)
    ]


def _planned_rows(plan: Any) -> int | None:
    """The row count PostgreSQL's planner expects, from `EXPLAIN (FORMAT JSON)`."""
    try:
        return int(plan[0]["Plan"]["Plan Rows"])
    except (LookupError, TypeError, ValueError):
        return None


def filter_conditions(job_filter: JobFilter) -> tuple[list[str], dict[str, Any]]:
    """`{conditions}` of the list statements for a filter (the workspace aside)."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if job_filter.statuses:
        conditions.append(status_condition(job_filter.statuses))
        if job_filter.statuses <= SETTLED_STATUSES:
            conditions.append(settled_condition())  # the status and type indexes' predicate
    for value, condition, name in (
        (job_filter.type, "type = :type", "type"),
        (job_filter.agent_task_id, "agent_task_id = :agent_task_id", "agent_task_id"),
        (job_filter.concurrency_key, "concurrency_key = :concurrency_key", "concurrency_key"),
        (job_filter.worker_id, "worker_id = :worker_id", "worker_id"),
    ):
        if value is not None:
            conditions.append(condition)
            params[name] = value
    if job_filter.type_prefix is not None:
        # Compared, not LIKE'd: `_` is a wildcard there and a job type may hold one.
        conditions.append("substr(type, 1, :type_prefix_length) = :type_prefix")
        params["type_prefix"] = job_filter.type_prefix
        params["type_prefix_length"] = len(job_filter.type_prefix)
    if job_filter.id_contains:
        # Anywhere in the id, with or without its dashes: UUIDv7s begin with a timestamp
        # that jobs created together share, so people search by the end (the dashboard
        # shows the last 8 digits) or paste an id without dashes.
        conditions.append("replace(CAST(id AS TEXT), '-', '') LIKE :id_contains")
        digits = job_filter.id_contains.lower().replace("-", "")
        params["id_contains"] = f"%{digits}%"
    if job_filter.error_contains is not None:
        # In any case, and literally: % and _ in what is sought are escaped.
        conditions.append("lower(error) LIKE :error_contains ESCAPE '\\'")
        params["error_contains"] = f"%{_escape_like(job_filter.error_contains.lower())}%"
    if job_filter.created_after is not None:
        conditions.append("created_at > :created_after")
        params["created_after"] = job_filter.created_after
    if job_filter.created_before is not None:
        conditions.append("created_at < :created_before")
        params["created_before"] = job_filter.created_before
    return conditions, params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
