"""What the dashboard's overview and `conveyor status` show: queue depth, throughput,
workers. Aggregates over indexed columns; the API caches them briefly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import orjson

from conveyor.serialization import dumps
from conveyor.store.connection import Database
from conveyor.store.queries import queries_for


@dataclass(frozen=True, slots=True)
class TypeStatusCount:
    type: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class MinuteThroughput:
    minute: datetime
    completed: int
    failed: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class WorkerSeen:
    worker_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    running: int
    types: tuple[str, ...] | None
    """The job types it claims; None: any type."""
    active: bool
    """Seen within the time it said it could go unseen; else it counts as stopped."""

    def serves(self, job_type: str) -> bool:
        return self.active and (self.types is None or job_type in self.types)


@dataclass(frozen=True, slots=True)
class DueJobs:
    """The jobs of a type a worker could claim now: queued, and come due. Queued jobs with
    a run_at still ahead wait for their time, not for a worker, so they are not here."""

    type: str
    count: int
    claimable_since: datetime
    """When the oldest of them became claimable: the later of its entering the queue and
    its run_at."""


@dataclass(frozen=True, slots=True)
class Overview:
    counts: list[TypeStatusCount]
    throughput: list[MinuteThroughput]
    workers: list[WorkerSeen]
    due: list[DueJobs]
    """By type, in type order."""

    @property
    def oldest_queued_at(self) -> datetime | None:
        """Since when the job waiting longest for a worker has been claimable."""
        return min((due.claimable_since for due in self.due), default=None)


class StatsStore:
    """The same code on both databases, with each one's queries."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.codec = database.codec
        self.queries = queries_for(database.dialect)

    async def record_worker_claiming(
        self,
        workspace_id: UUID,
        worker_id: str,
        types: Sequence[str] | None,
        stale_after_seconds: float,
    ) -> None:
        async with self.database.write() as connection:
            await connection.execute(
                self.queries["record_worker_claiming"].sql,
                {
                    "ws": workspace_id,
                    "worker_id": worker_id,
                    "types": None if types is None else dumps(sorted(types)).decode(),
                    "stale_after": stale_after_seconds,
                },
            )

    async def record_worker_heartbeat(self, workspace_id: UUID, worker_id: str) -> None:
        async with self.database.write() as connection:
            await connection.execute(
                self.queries["record_worker_heartbeat"].sql,
                {"ws": workspace_id, "worker_id": worker_id},
            )

    async def queue_depth(self) -> list[tuple[str, str, str, int]]:
        """(workspace slug, type, status, count) of jobs not finished yet, for metrics: read
        through the partial indexes on those statuses, never the whole history."""
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["queue_depth"].sql)
        return [(r["slug"], r["type"], r["status"], int(r["n"])) for r in rows]

    async def overview(self, workspace_id: UUID, *, hours: float = 1.0) -> Overview:
        d = self.codec
        q = self.queries
        params = {"ws": workspace_id, "window": -hours * 3600}
        async with self.database.read() as connection:
            count_rows = await connection.fetch(
                q["count_by_type_and_status"].sql, {"ws": workspace_id}
            )
            minute_rows = await connection.fetch(q["throughput_by_minute"].sql, params)
            worker_rows = await connection.fetch(q["workers_seen"].sql, params)
            due_rows = await connection.fetch(q["due_jobs_by_type"].sql, {"ws": workspace_id})
        return Overview(
            counts=[TypeStatusCount(r["type"], r["status"], int(r["n"])) for r in count_rows],
            throughput=[
                MinuteThroughput(
                    datetime.fromtimestamp(int(r["minute"]), UTC),
                    int(r["completed"]),
                    int(r["failed"]),
                    int(r["cancelled"]),
                )
                for r in minute_rows
            ],
            workers=[
                WorkerSeen(
                    r["worker_id"],
                    d.timestamp(r["first_seen_at"]),
                    d.timestamp(r["last_seen_at"]),
                    int(r["running"]),
                    None if r["types"] is None else tuple(orjson.loads(r["types"])),
                    bool(r["active"]),
                )
                for r in worker_rows
            ],
            due=[
                DueJobs(r["type"], int(r["n"]), d.timestamp(r["claimable_since"])) for r in due_rows
            ],
        )
