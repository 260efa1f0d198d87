"""Rows into domain objects: jobs, steps and events, through the driver's value codec."""

from __future__ import annotations

from typing import Any

from conveyor.domain.events import Event
from conveyor.domain.jobs import Job, JobStatus
from conveyor.domain.steps import Step, StepPhase, StepStatus, StepType
from conveyor.store.connection import Row, ValueCodec

_STATUSES = {status.value: status for status in JobStatus}


class Rows:
    def __init__(self, codec: ValueCodec) -> None:
        self.codec = codec
        self._by_position = codec.typed

    def job(self, row: Row) -> Job:
        """A row of `{job_columns}`."""
        if self._by_position:
            return self._job_by_position(row)
        d = self.codec
        return Job(
            id=d.uuid(row["id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            type=row["type"],
            status=_STATUSES[row["status"]],
            priority=row["priority"],
            payload=d.json(row["payload"]),
            result=d.optional_json(row["result"]),
            error=row["error"],
            progress_percent=row["progress_percent"],
            agent_task_id=row["agent_task_id"],
            attempt=row["attempt"],
            max_attempts=row["max_attempts"],
            run_at=d.timestamp(row["run_at"]),
            idempotency_key=row["idempotency_key"],
            worker_id=row["worker_id"],
            lease_id=d.optional_uuid(row["lease_id"]),
            lease_expires_at=d.optional_timestamp(row["lease_expires_at"]),
            retry_of=d.optional_uuid(row["retry_of"]),
            retry_backoff_seconds=d.seconds(row["retry_backoff_seconds"]),
            retry_backoff_max_seconds=d.seconds(row["retry_backoff_max_seconds"]),
            created_at=d.timestamp(row["created_at"]),
            started_at=d.optional_timestamp(row["started_at"]),
            completed_at=d.optional_timestamp(row["completed_at"]),
            updated_at=d.timestamp(row["updated_at"]),
            version=row["version"],
            last_event_seq=row["last_event_seq"],
            error_detail=row["error_detail"],
            concurrency_key=row["concurrency_key"],
            timeout_seconds=d.optional_seconds(row["timeout_seconds"]),
        )

    @staticmethod
    def _job_by_position(row: Row) -> Job:
        """When the driver hands values over typed, in `JOB_COLUMNS` order (the order of
        Job's fields): the hottest decode there is, so by position."""
        record: Any = row  # an asyncpg Record: positional access and slices
        return Job(record[0], record[1], record[2], _STATUSES[record[3]], *record[4:])

    def step(self, row: Row) -> Step:
        d = self.codec
        return Step(
            id=d.uuid(row["id"]),
            job_id=d.uuid(row["job_id"]),
            ordinal=row["ordinal"],
            name=row["name"],
            phase=StepPhase(row["phase"]),
            type=StepType(row["type"]),
            status=StepStatus(row["status"]),
            started_at=d.optional_timestamp(row["started_at"]),
            completed_at=d.optional_timestamp(row["completed_at"]),
            duration_ms=row["duration_ms"],
            tokens_input=row["tokens_input"],
            tokens_output=row["tokens_output"],
            output=row["output"],
        )

    def event(self, row: Row) -> Event:
        d = self.codec
        return Event(
            id=row["id"],
            job_id=d.uuid(row["job_id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            job_type=row["job_type"],
            seq=row["seq"],
            step_id=d.optional_uuid(row["step_id"]),
            type=row["type"],
            actor=row["actor"],
            payload=d.json(row["payload"]),
            timestamp=d.timestamp(row["created_at"]),
            tx=row["tx"],
        )
