"""Creating jobs: one, a batch, or a new run of a failed one."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from conveyor.domain.errors import (
    BatchIdempotencyConflict,
    IdempotencyConflict,
    InvalidInput,
    JobConflict,
)
from conveyor.domain.idempotency import default_retry_key, same_request, validate_client_key
from conveyor.domain.jobs import Job, JobSpec, JobStatus
from conveyor.domain.limits import validate_json, validate_text
from conveyor.domain.status import RETRIABLE_STATUSES
from conveyor.ids import uuid7s
from conveyor.service.core import JobServiceCore
from conveyor.store.jobs import NewJob


def _ensure_same_request(existing: Job, spec: JobSpec) -> None:
    """An idempotency key stands for one request: the same key with another type or
    payload is a mistake worth a 409, not a silent return of the first job."""
    if not same_request(existing, spec):
        assert existing.idempotency_key is not None
        raise IdempotencyConflict(existing.idempotency_key, existing.id)


def _ensure_one_request_per_key(specs: Sequence[JobSpec]) -> None:
    """Within a batch too: a key repeated with another type or payload would make one job
    of the two, the second answered as if it existed."""
    first_with_key: dict[str, int] = {}
    for index, spec in enumerate(specs):
        if spec.idempotency_key is None:
            continue
        first = first_with_key.setdefault(spec.idempotency_key, index)
        if not same_request(specs[first], spec):
            raise BatchIdempotencyConflict(spec.idempotency_key, first, index)


class JobCreation(JobServiceCore):
    async def create_job(
        self, workspace_id: UUID, spec: JobSpec, actor: str, *, server_key: bool = False
    ) -> tuple[Job, bool]:
        """Create one job; the bool is False when its idempotency key returned an old one.
        `server_key`: as `create_jobs`'."""
        [(job, created)] = await self.create_jobs(
            workspace_id, [spec], actor, batch=False, server_key=server_key
        )
        if not created:
            _ensure_same_request(job, spec)  # a concurrent request took the key in between
        return job, created

    async def create_jobs(
        self,
        workspace_id: UUID,
        specs: Sequence[JobSpec],
        actor: str,
        *,
        batch: bool = True,
        server_key: bool = False,
    ) -> list[tuple[Job, bool]]:
        """Create jobs in one transaction: each row, its first events and its place in the
        queue (status QUEUED) commit together or not at all. A refused field of a `batch`
        is named by its place in it (`jobs.N.…`), as the API's schema names its own.
        `server_key`: the idempotency keys are the server's own (a schedule's, a retry's
        default), which may begin as no client's may (domain/idempotency.py)."""
        for index, spec in enumerate(specs):
            where = f"jobs.{index}." if batch else ""
            try:
                spec.validate()
            except InvalidInput as invalid:  # named as the batch's other fields are
                raise InvalidInput(f"{where}{invalid.field}", invalid.message) from None
            validate_json(spec.payload, f"{where}payload", self.limits)
            for name in ("agent_task_id", "idempotency_key", "concurrency_key"):
                text = getattr(spec, name)
                if text is not None:
                    validate_text(text, f"{where}{name}")
            if spec.idempotency_key is not None and not server_key:
                validate_client_key(spec.idempotency_key, f"{where}idempotency_key")
        _ensure_one_request_per_key(specs)
        keyed = {spec.idempotency_key: spec for spec in specs if spec.idempotency_key}
        if keyed:
            for job in await self.jobs.find_by_idempotency_keys(workspace_id, list(keyed)):
                assert job.idempotency_key is not None
                _ensure_same_request(job, keyed[job.idempotency_key])
        ids = uuid7s(len(specs))
        new_jobs = [NewJob(job_id, spec) for job_id, spec in zip(ids, specs, strict=True)]
        results = await self._retrying(lambda: self.jobs.insert_jobs(workspace_id, new_jobs, actor))
        self.observer.jobs_created([job for job, created in results if created])
        if any(created and job.status == JobStatus.QUEUED for job, created in results):
            self.work_signal.notify(workspace_id)
        return results

    async def retry_job(
        self, workspace_id: UUID, job_id: UUID, actor: str, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """A new job with the failed (or cancelled) job's type, priority and payload: the
        input it was given, never the result it produced."""
        old = await self.require_job(workspace_id, job_id)
        if old.status not in RETRIABLE_STATUSES:
            raise JobConflict(
                old.id,
                f"only FAILED or CANCELLED jobs can be retried; job {old.id} is {old.status.value}",
                current_version=old.version,
            )
        server_key = not idempotency_key  # the caller's key is a client's, checked as one
        spec = JobSpec(
            type=old.type,
            payload=old.payload,
            priority=old.priority,
            agent_task_id=old.agent_task_id,
            max_attempts=old.max_attempts,
            # Retrying the same job twice (a double click) gives the same new job.
            idempotency_key=default_retry_key(old.id) if server_key else idempotency_key,
            retry_backoff_seconds=old.retry_backoff_seconds,
            retry_backoff_max_seconds=old.retry_backoff_max_seconds,
            retry_of=old.id,
            concurrency_key=old.concurrency_key,
            timeout_seconds=old.timeout_seconds,
        )
        return await self.create_job(workspace_id, spec, actor, server_key=server_key)
