"""Limits in the database: a workspace's caps on what runs, with what they govern now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from conveyor.domain.capacity import (
    UNMADE_VERSION,
    Limit,
    Rate,
    WaitReason,
    limit_type,
    why_waiting,
)
from conveyor.store.connection import Connection, Database, Row
from conveyor.store.queries import queries_for


@dataclass(frozen=True, slots=True)
class LimitCounts:
    """A limit, what it governs now, and when it was set."""

    workspace: str
    limit: Limit
    running: int
    queued: int
    recent_starts: int
    created_at: datetime
    updated_at: datetime
    version: int
    """New with each PUT (`workspaces.limit_versions`), not with its counts."""

    @property
    def waiting_because(self) -> WaitReason | None:
        return why_waiting(self.limit, self.running, self.recent_starts)


@dataclass(frozen=True, slots=True)
class LimitPut:
    """What a PUT did: whether it wrote the limit (not, when its expected version was not
    the limit's), and the limit as it is now (None: there is none)."""

    written: bool
    now: LimitCounts | None


class LimitStore:
    """The same code on both databases, with each one's queries (all in shared.sql)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.codec = database.codec
        self.queries = queries_for(database.dialect)

    async def put(self, limit: Limit, expected_version: int | None = None) -> LimitPut:
        """Create or change a limit; with `expected_version`, only the limit at that version
        (`UNMADE_VERSION`: only if there is none yet), a compare-and-set: another is left as
        it is. Under the workspace's claim lock: a new limit counts the jobs of its name
        running now (`count_into_limit`), then takes the leaves written before that count
        off every limit (`fold_limit_leaves`), so none of them is taken off the new one; a
        changed limit keeps its count. What it answers is read in the same transaction."""
        q, rate = self.queries, limit.rate
        async with self.database.transaction() as connection:
            await connection.execute(
                q["take_claim_locks"].sql, {"workspaces": [limit.workspace_id], "shared": []}
            )
            params = {"ws": limit.workspace_id, "name": limit.name}
            # The claim lock, taken by every PUT and DELETE of the workspace's limits, keeps
            # the version read here the limit's until this transaction ends.
            found = await connection.fetchrow(q["limit_version"].sql, params)
            version = UNMADE_VERSION if found is None else int(found["version"])
            written = expected_version is None or version == expected_version
            if written:
                taken = await connection.fetchrow(q["next_limit_version"].sql, params)
                # None: the workspace is gone, and the insert's foreign key refuses it.
                new_version = 1 if taken is None else int(taken["version"])
                running = 0
                if found is None:
                    counted = await connection.fetch(*self._of_its_name("count_into_limit", limit))
                    running = len(counted)
                    await connection.execute(
                        q["fold_limit_leaves"].sql, {"workspaces": [limit.workspace_id]}
                    )
                await connection.execute(
                    q["put_limit"].sql,
                    {
                        **params,
                        "max_running": limit.max_running,
                        "rate_count": None if rate is None else rate.count,
                        "rate_per_seconds": None if rate is None else rate.per_seconds,
                        "paused": limit.paused,
                        "running": running,
                        "version": new_version,
                    },
                )
            now = await self._read_counts(connection, limit.workspace_id, [limit.name])
        return LimitPut(written, now[0] if now else None)

    def _of_its_name(self, query: str, limit: Limit) -> tuple[str, dict[str, Any]]:
        """`count_into_limit` or `count_out_of_limits` for a limit: over the running jobs of
        its type, or of its key."""
        job_type = limit_type(limit.name)
        column, value = (
            ("type", job_type) if job_type is not None else ("concurrency_key", limit.name)
        )
        sql = self.queries[query].compose(
            workspace=self.queries.unindexed("workspace_id"), matches=f"{column} = :value"
        )
        return sql, {"ws": limit.workspace_id, "value": value}

    async def delete(self, workspace_id: UUID, name: str) -> bool:
        """Under the workspace's claim lock (a limit created meanwhile counts its jobs
        whole): the running jobs of its name that no other limit governs count in none
        (`count_out_of_limits`), then the leaves written so far are folded: a workspace
        left without limits has no claim under limits to fold them."""
        q = self.queries
        async with self.database.transaction() as connection:
            await connection.execute(
                q["take_claim_locks"].sql, {"workspaces": [workspace_id], "shared": []}
            )
            params = {"ws": workspace_id, "name": name}
            deleted = await connection.execute_counting(q["delete_limit"].sql, params)
            if deleted:
                gone = Limit(workspace_id, name)
                await connection.execute(*self._of_its_name("count_out_of_limits", gone))
            await connection.execute(q["fold_limit_leaves"].sql, {"workspaces": [workspace_id]})
        return deleted > 0

    async def existing(self, workspace_id: UUID, names: Sequence[str]) -> list[str]:
        """Which of the limits `names` the workspace has."""
        sql = self.queries["existing_limits"].compose(names=self.queries.in_list("l.name", "names"))
        async with self.database.read() as connection:
            rows = await connection.fetch(sql, {"ws": workspace_id, "names": list(names)})
        return [row["name"] for row in rows]

    async def with_counts(
        self, workspace_id: UUID | None = None, names: Sequence[str] | None = None
    ) -> list[LimitCounts]:
        """The limits of a workspace (all, or those named), or of every workspace."""
        async with self.database.read() as connection:
            return await self._read_counts(connection, workspace_id, names)

    async def _read_counts(
        self, connection: Connection, workspace_id: UUID | None, names: Sequence[str] | None
    ) -> list[LimitCounts]:
        which = ["1 = 1"]
        params: dict[str, Any] = {}
        if workspace_id is not None:
            which.append("l.workspace_id = :ws")
            params["ws"] = workspace_id
        if names is not None:
            which.append(self.queries.in_list("l.name", "names"))
            params["names"] = list(names)
        sql = self.queries["limits_with_counts"].compose(which=" AND ".join(which))
        rows = await connection.fetch(sql, params)
        return [self._counts(row) for row in rows]

    def _counts(self, row: Row) -> LimitCounts:
        d = self.codec
        rate = None
        if row["rate_count"] is not None:
            rate = Rate(int(row["rate_count"]), d.seconds(row["rate_per_seconds"]))
        limit = Limit(
            d.uuid(row["workspace_id"]),
            row["name"],
            row["max_running"],
            rate,
            bool(row["paused"]),
        )
        return LimitCounts(
            row["workspace"],
            limit,
            int(row["running"]),
            int(row["queued"]),
            int(row["recent_starts"]),
            d.timestamp(row["created_at"]),
            d.timestamp(row["updated_at"]),
            int(row["version"]),
        )
