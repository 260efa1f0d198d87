"""What the dashboard's overview and `conveyor status` show: queue depth, throughput,
workers. Aggregates over indexed columns; the API caches them briefly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from conveyor.store.connection import Database


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


@dataclass(frozen=True, slots=True)
class Overview:
    counts: list[TypeStatusCount]
    throughput: list[MinuteThroughput]
    workers: list[WorkerSeen]
    oldest_queued_at: datetime | None


class StatsStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect = database.dialect

    async def record_workers_seen(self, workspace_id: UUID, worker_ids: list[str]) -> None:
        async with self.database.write() as connection:
            for worker_id in worker_ids:
                await connection.execute(
                    "INSERT INTO workers (workspace_id, worker_id, first_seen_at, last_seen_at) "
                    f"VALUES (:ws, :worker_id, {self.dialect.now}, {self.dialect.now}) "
                    "ON CONFLICT (workspace_id, worker_id) "
                    f"DO UPDATE SET last_seen_at = {self.dialect.now}",
                    {"ws": workspace_id, "worker_id": worker_id},
                )

    async def queue_depth(self) -> list[tuple[str, str, str, int]]:
        """(workspace slug, type, status, count) of jobs not finished yet, for metrics: read
        through the partial indexes on those statuses, never the whole history."""
        async with self.database.read() as connection:
            rows = await connection.fetch(
                "SELECT w.slug, j.type, j.status, count(*) AS n FROM jobs j "
                "JOIN workspaces w ON w.id = j.workspace_id "
                "WHERE j.status IN ('PENDING', 'QUEUED', 'RUNNING') "
                "GROUP BY w.slug, j.type, j.status"
            )
        return [(r["slug"], r["type"], r["status"], int(r["n"])) for r in rows]

    async def overview(self, workspace_id: UUID, *, hours: float = 1.0) -> Overview:
        d = self.dialect
        params = {"ws": workspace_id, "window": -hours * 3600}
        async with self.database.read() as connection:
            count_rows = await connection.fetch(
                "SELECT type, status, count(*) AS n FROM jobs WHERE workspace_id = :ws "
                "GROUP BY type, status ORDER BY type, status",
                {"ws": workspace_id},
            )
            minute_rows = await connection.fetch(
                f"SELECT {d.minute_of('completed_at')} AS minute, "
                "sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS completed, "
                "sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed, "
                "sum(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled "
                "FROM jobs WHERE workspace_id = :ws AND completed_at IS NOT NULL "
                f"AND completed_at > {d.now_plus('window')} GROUP BY 1 ORDER BY 1",
                params,
            )
            worker_rows = await connection.fetch(
                "SELECT w.worker_id, w.first_seen_at, w.last_seen_at, "
                "(SELECT count(*) FROM jobs j WHERE j.workspace_id = w.workspace_id "
                "AND j.worker_id = w.worker_id AND j.status = 'RUNNING') AS running "
                "FROM workers w WHERE w.workspace_id = :ws "
                f"AND w.last_seen_at > {d.now_plus('window')} ORDER BY w.last_seen_at DESC "
                "LIMIT 200",
                params,
            )
            oldest = await connection.fetchrow(
                "SELECT min(run_at) AS oldest FROM jobs WHERE workspace_id = :ws "
                f"AND status = 'QUEUED' AND run_at <= {d.now}",
                {"ws": workspace_id},
            )
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
                )
                for r in worker_rows
            ],
            oldest_queued_at=(None if oldest is None else d.optional_timestamp(oldest["oldest"])),
        )
