"""Retention in the database: each workspace's own settings, and the pruner's batches.

A batch deletes at most `limit` jobs of one workspace and final status, with their events
(their steps go by the foreign key's ON DELETE CASCADE), in one short transaction: the
selection is `select_prunable_jobs` (shared.sql), the one place that says what may go, and
the delete repeats its guard (a final status, finished before the cut-off). The same
transaction records how far the deleted events reached (`workspace_pruning`), for streams
that resume behind them.

One pruner at a time per database: on PostgreSQL each batch takes a transaction-level
advisory lock, and a batch that cannot get it leaves the work to the server holding it; on
SQLite each batch holds the one write lock (BEGIN IMMEDIATE) and gives it up between
batches. The two databases delete differently (PostgreSQL in one statement, SQLite in two):
`PostgresLifetimeStore` and `SqliteLifetimeStore`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import orjson

from conveyor.domain.events import StreamPosition
from conveyor.domain.lifetime import PrunedEvents, PruneRule
from conveyor.domain.settings import WorkspaceSettings
from conveyor.serialization import dumps
from conveyor.store.connection import Connection, Database, Row
from conveyor.store.queries import queries_for

PRUNE_LOCK: Final = 0x636F6E70  # pg_try_advisory_xact_lock key ("conp"): one pruner at a time
EVERYTHING: Final = 2**62
"""A LIMIT that does not limit (counting what a pass would delete)."""


@dataclass(frozen=True, slots=True)
class PrunedBatch:
    jobs: int
    events: int


@dataclass(frozen=True, slots=True)
class WorkspaceRetention:
    """A workspace as the pruner sees it: its id, name and own settings."""

    id: UUID
    slug: str
    settings: WorkspaceSettings


def _settings(row: Row) -> WorkspaceSettings:
    """A workspace's settings from its row: the JSON document (NULL: nothing set) and the
    weight column."""
    text, weight = row["settings"], int(row["weight"])
    try:
        document = None if text is None else orjson.loads(text)
    except orjson.JSONDecodeError:
        document = None
    return WorkspaceSettings.from_stored(document, weight=weight)


class LifetimeStore(abc.ABC):
    pause_between_batches: float = 0.0
    """How long the pruner waits after a batch, as a share of the time the batch took."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.codec = database.codec
        self.queries = queries_for(database.dialect)

    # -- settings --------------------------------------------------------------------------

    async def settings(self, workspace_id: UUID) -> WorkspaceSettings | None:
        """The workspace's own settings; None if there is no such workspace."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["workspace_settings"].sql, {"ws": workspace_id}
            )
        return None if row is None else _settings(row)

    async def change_settings(
        self, workspace_id: UUID, change: Callable[[WorkspaceSettings], WorkspaceSettings]
    ) -> WorkspaceSettings | None:
        """Apply `change` to the workspace's settings with its row locked, so concurrent
        changes each see the other's; None if there is no such workspace."""
        async with self.database.transaction() as connection:
            row = await connection.fetchrow(
                self.queries["lock_workspace_settings"].sql, {"ws": workspace_id}
            )
            if row is None:
                return None
            changed = change(_settings(row))
            document = changed.to_document()
            await connection.execute(
                self.queries["store_workspace_settings"].sql,
                {
                    "ws": workspace_id,
                    "settings": None if document is None else dumps(document).decode(),
                    "weight": changed.weight,
                },
            )
        return changed

    async def workspaces(self) -> list[WorkspaceRetention]:
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["workspaces_with_settings"].sql)
        return [
            WorkspaceRetention(self.codec.uuid(row["id"]), row["slug"], _settings(row))
            for row in rows
        ]

    # -- pruning ---------------------------------------------------------------------------

    async def count_prunable(self, workspace_id: UUID, rule: PruneRule) -> int:
        sql = self.queries["count_prunable"].compose(
            prunable=self.queries["select_prunable_jobs"].sql
        )
        async with self.database.read() as connection:
            row = await connection.fetchrow(sql, _rule_params(workspace_id, rule, EVERYTHING))
        return 0 if row is None else int(row["n"])

    async def prune_batch(
        self, workspace_id: UUID, rule: PruneRule, limit: int
    ) -> PrunedBatch | None:
        """Delete up to `limit` of the jobs `rule` selects, with their events and steps,
        in one transaction; None when another server's pruner is at work (PostgreSQL)."""
        params = _rule_params(workspace_id, rule, limit)
        async with self.database.transaction() as connection:
            locked = await connection.fetchrow(
                self.queries["try_prune_lock"].sql, {"lock": PRUNE_LOCK}
            )
            if locked is None or not locked["locked"]:
                return None
            jobs, events, position, highest_id = await self._delete_batch(connection, params)
            if jobs:
                await connection.execute(
                    self.queries["record_pruned"].sql,
                    {
                        "ws": workspace_id,
                        "tx": position.tx,
                        "id": position.id,
                        "highest_id": highest_id,
                        "jobs": jobs,
                    },
                )
        return PrunedBatch(jobs, events)

    async def prune_schedule_runs(
        self, workspace_id: UUID, age_seconds: float, limit: int
    ) -> int | None:
        """Delete up to `limit` of the workspace's schedule history older than
        `age_seconds`; None when another server's pruner is at work (PostgreSQL)."""
        params = {"ws": workspace_id, "age": -age_seconds, "limit": limit}
        async with self.database.transaction() as connection:
            locked = await connection.fetchrow(
                self.queries["try_prune_lock"].sql, {"lock": PRUNE_LOCK}
            )
            if locked is None or not locked["locked"]:
                return None
            return await connection.execute_counting(
                self.queries["prune_schedule_runs"].sql, params
            )

    async def pruned_events(self, workspace_id: UUID) -> PrunedEvents | None:
        """What the pruner has deleted of the workspace's events (None: nothing yet)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(self.queries["pruned_events"].sql, {"ws": workspace_id})
        if row is None:
            return None
        return PrunedEvents(
            StreamPosition(int(row["event_tx"]), int(row["event_id"])),
            int(row["highest_event_id"]),
        )

    async def jobs_pruned(self, workspace_id: UUID) -> int:
        """How many of the workspace's jobs the pruner has deleted, all told."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(self.queries["pruned_events"].sql, {"ws": workspace_id})
        return 0 if row is None else int(row["jobs_pruned"])

    @abc.abstractmethod
    async def _delete_batch(
        self, connection: Connection, params: dict[str, Any]
    ) -> tuple[int, int, StreamPosition, int]:
        """Delete one batch in the open transaction: (jobs, events, the furthest deleted
        event's position, the highest deleted event id); positions are 0 when none."""


def _rule_params(workspace_id: UUID, rule: PruneRule, limit: int) -> dict[str, Any]:
    return {
        "ws": workspace_id,
        "status": rule.status.value,
        "age": -rule.age_seconds,
        "limit": limit,
    }


class PostgresLifetimeStore(LifetimeStore):
    """A batch is one statement (the selection, the jobs, their events)."""

    async def _delete_batch(
        self, connection: Connection, params: dict[str, Any]
    ) -> tuple[int, int, StreamPosition, int]:
        sql = self.queries["prune_jobs"].compose(prunable=self.queries["select_prunable_jobs"].sql)
        row = await connection.fetchrow(sql, params)
        assert row is not None
        return (
            int(row["jobs"]),
            int(row["events"]),
            StreamPosition(int(row["last_tx"] or 0), int(row["last_id"] or 0)),
            int(row["highest_id"] or 0),
        )


class SqliteLifetimeStore(LifetimeStore):
    """A batch is two statements under the one write lock: the jobs, then their events.

    Every process on the file shares that lock, and a writer of another process (a
    `conveyor serve` while `conveyor prune` runs, say) waits for it in SQLite's busy
    handler, which polls: a pruner taking the lock again at once kept such a writer out
    for minutes (measured: one 20,000-job drain in the five minutes a pass took). So the
    pruner leaves the lock free after each batch for as long as the batch held it."""

    pause_between_batches = 1.0

    async def _delete_batch(
        self, connection: Connection, params: dict[str, Any]
    ) -> tuple[int, int, StreamPosition, int]:
        sql = self.queries["prune_jobs"].compose(prunable=self.queries["select_prunable_jobs"].sql)
        gone: list[Row] = await connection.fetch(sql, params)
        if not gone:
            return 0, 0, StreamPosition(0, 0), 0
        events = await connection.fetch(
            self.queries["prune_events"].sql, {"job_ids": [row["id"] for row in gone]}
        )
        highest = max((int(row["id"]) for row in events), default=0)
        return len(gone), len(events), StreamPosition(0, highest), highest
