"""Job use cases for clients, workers and the reaper.

Two shapes of write, both safe under any concurrency:

* decide, then compare-and-set: read the job, let the domain decide (which raises when
  the move is illegal), store the change guarded by the version read and the statuses the
  transition table allows. A miss means somebody else wrote first: decide again on a
  fresh read, under `retry_on_conflict`.
* guarded statement: the hot paths (claim, complete, heartbeat, reports) go straight to
  a write guarded by lease and status; only when it misses is the job read, to explain
  why (lease lost, already completed, not found) with the domain's own rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar
from uuid import UUID, uuid4

from conveyor.bus.work import WorkSignal
from conveyor.domain import jobs as rules
from conveyor.domain.errors import (
    ConcurrentUpdate,
    IdempotencyConflict,
    InvalidInput,
    JobConflict,
    JobNotFound,
    StepNotFound,
)
from conveyor.domain.events import (
    Event,
    JsonValue,
    NewEvent,
    StreamPosition,
    WorkspaceEventsPage,
    validate_custom_event_type,
)
from conveyor.domain.jobs import (
    ClaimedJob,
    ClaimRequest,
    CompletedJob,
    Completion,
    Job,
    JobChange,
    JobFilter,
    JobSpec,
    JobStatus,
)
from conveyor.domain.limits import JsonLimits, validate_json, validate_text
from conveyor.domain.steps import (
    Step,
    StepPhase,
    StepStatus,
    StepType,
    decide_new_step,
    decide_step_update,
)
from conveyor.ids import uuid7s
from conveyor.service.retry import RetryPolicy, WriteConflict, retry_on_conflict
from conveyor.store import Store
from conveyor.store.jobs import NewJob

T = TypeVar("T")
R = TypeVar("R")
Claimed = TypeVar("Claimed", Job, ClaimedJob)
"""What a claim answers: whole jobs (the HTTP API) or `ClaimedJob`s (the in-process worker)."""

MAX_LIST_LIMIT = 200
DEFAULT_POLL_INTERVAL = 1.0
"""A long-poll looks again this often even without a wake-up: jobs whose run_at (a
scheduled start or a retry backoff) comes due announce themselves to nobody."""


def _ensure_same_request(existing: Job, spec: JobSpec) -> None:
    """An idempotency key stands for one request: the same key with another type or
    payload is a mistake worth a 409, not a silent return of the first job."""
    if (existing.type, existing.payload) != (spec.type, spec.payload):
        assert existing.idempotency_key is not None
        raise IdempotencyConflict(existing.idempotency_key, existing.id)


class JobObserver(Protocol):
    """Told what happened to jobs: the metrics listen here."""

    def jobs_created(self, jobs: Sequence[Job]) -> None: ...

    def jobs_claimed(self, jobs: Sequence[Job | ClaimedJob]) -> None: ...

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None: ...

    def job_settled(self, job: Job) -> None: ...

    def leases_expired(self, count: int) -> None: ...

    def conflict_retried(self, error: BaseException) -> None: ...


class Unobserved:
    """Watches nothing: the service's observer unless given one, and a base for an
    observer that watches only some of it."""

    def jobs_created(self, jobs: Sequence[Job]) -> None:
        return None

    def jobs_claimed(self, jobs: Sequence[Job | ClaimedJob]) -> None:
        return None

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None:
        return None

    def job_settled(self, job: Job) -> None:
        return None

    def leases_expired(self, count: int) -> None:
        return None

    def conflict_retried(self, error: BaseException) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[Job]
    total: int
    page: int
    limit: int

    @property
    def total_pages(self) -> int:
        return (self.total + self.limit - 1) // self.limit if self.total else 0


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: Job
    steps: list[Step]
    events: list[Event]


class CompletionOutcome(NamedTuple):
    """What became of one completion: `error` says why it was not recorded; `job` is the
    completed job, when the caller asked for jobs back (`complete_jobs(answer_jobs=...)`)."""

    job_id: UUID
    job: Job | None
    error: Exception | None

    @property
    def completed(self) -> bool:
        return self.error is None


class JobService:
    def __init__(
        self,
        store: Store,
        *,
        work_signal: WorkSignal | None = None,
        retry_policy: RetryPolicy | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        rng: random.Random | None = None,
        observer: JobObserver | None = None,
        on_worker_seen: Callable[[UUID, str], Awaitable[None]] | None = None,
        limits: JsonLimits | None = None,
    ) -> None:
        self.store = store
        self.jobs = store.jobs
        self.work_signal = work_signal or WorkSignal()
        self.retry_policy = retry_policy or RetryPolicy()
        self.poll_interval = poll_interval
        self._rng = rng or random.Random()
        self.observer: JobObserver = observer or Unobserved()
        self._on_worker_seen = on_worker_seen
        self.limits = limits or JsonLimits()

    # -- helpers -------------------------------------------------------------------------

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        return await retry_on_conflict(
            operation,
            self.retry_policy,
            jitter=self._rng.random,
            on_retry=self.observer.conflict_retried,
        )

    async def require_job(self, workspace_id: UUID, job_id: UUID) -> Job:
        job = await self.jobs.get_job(workspace_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def _decide_and_store(
        self,
        workspace_id: UUID,
        job_id: UUID,
        decide: Callable[[Job], JobChange | None],
        *,
        expected_version: int | None = None,
    ) -> Job:
        """Decide on a fresh read and compare-and-set, again while others win the race.
        `decide` returning None means "nothing to do": the job is returned as it is."""

        async def attempt() -> Job:
            job = await self.require_job(workspace_id, job_id)
            if expected_version is not None and job.version != expected_version:
                raise ConcurrentUpdate(
                    job_id, expected_version=expected_version, current_version=job.version
                )
            change = decide(job)
            if change is None:
                return job
            stored = await self.jobs.apply_change(workspace_id, change)
            if stored is None:
                raise WriteConflict(job_id)
            return stored

        return await self._retrying_on_job(workspace_id, job_id, attempt, expected_version)

    async def _retrying_on_job(
        self,
        workspace_id: UUID,
        job_id: UUID,
        operation: Callable[[], Awaitable[T]],
        expected_version: int | None = None,
    ) -> T:
        """`_retrying`, for an operation on one job: when the races cannot be won, the
        caller gets a 409 with the job's current version, never a 500."""
        try:
            return await self._retrying(operation)
        except WriteConflict:
            current = await self.require_job(workspace_id, job_id)
            raise ConcurrentUpdate(
                job_id, expected_version=expected_version, current_version=current.version
            ) from None

    # -- client use cases ----------------------------------------------------------------

    async def create_job(self, workspace_id: UUID, spec: JobSpec, actor: str) -> tuple[Job, bool]:
        """Create one job; the bool is False when its idempotency key returned an old one."""
        [(job, created)] = await self.create_jobs(workspace_id, [spec], actor)
        if not created:
            _ensure_same_request(job, spec)  # a concurrent request took the key in between
        return job, created

    async def create_jobs(
        self, workspace_id: UUID, specs: Sequence[JobSpec], actor: str
    ) -> list[tuple[Job, bool]]:
        """Create jobs in one transaction: each row, its first events and its place in the
        queue (status QUEUED) commit together or not at all."""
        for index, spec in enumerate(specs):
            where = "" if len(specs) == 1 else f"jobs.{index}."
            spec.validate()
            validate_json(spec.payload, f"{where}payload", self.limits)
            for name in ("agent_task_id", "idempotency_key"):
                text = getattr(spec, name)
                if text is not None:
                    validate_text(text, f"{where}{name}")
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

    async def ping(self) -> None:
        """Raises unless the database answers."""
        await self.store.database.ping()

    async def get_job(self, workspace_id: UUID, job_id: UUID) -> Job:
        return await self.require_job(workspace_id, job_id)

    async def get_job_detail(
        self, workspace_id: UUID, job_id: UUID, *, event_limit: int = 1000
    ) -> JobDetail:
        job = await self.require_job(workspace_id, job_id)
        steps = await self.jobs.list_steps(job_id)
        job_events = await self.jobs.list_events(job_id, after_seq=0, limit=event_limit)
        return JobDetail(job, steps, job_events)

    async def list_jobs(
        self, workspace_id: UUID, job_filter: JobFilter, *, page: int, limit: int
    ) -> Page:
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        page = max(1, page)
        found, total = await self.jobs.list_jobs(
            workspace_id, job_filter, offset=(page - 1) * limit, limit=limit
        )
        return Page(found, total, page, limit)

    async def cancel_job(
        self, workspace_id: UUID, job_id: UUID, actor: str, reason: str | None = None
    ) -> Job:
        job = await self._decide_and_store(
            workspace_id, job_id, lambda job: rules.decide_cancel(job, actor, reason)
        )
        self.observer.job_settled(job)
        return job

    async def retry_job(
        self, workspace_id: UUID, job_id: UUID, actor: str, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """A new job with the failed (or cancelled) job's type, priority and payload: the
        input it was given, never the result it produced."""
        old = await self.require_job(workspace_id, job_id)
        if old.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobConflict(
                old.id,
                f"only FAILED or CANCELLED jobs can be retried; job {old.id} is {old.status.value}",
                current_version=old.version,
            )
        spec = JobSpec(
            type=old.type,
            payload=old.payload,
            priority=old.priority,
            agent_task_id=old.agent_task_id,
            max_attempts=old.max_attempts,
            # Retrying the same job twice (a double click) gives the same new job.
            idempotency_key=idempotency_key or f"retry:{old.id}",
            retry_backoff_seconds=old.retry_backoff_seconds,
            retry_backoff_max_seconds=old.retry_backoff_max_seconds,
            retry_of=old.id,
        )
        return await self.create_job(workspace_id, spec, actor)

    async def change_status(
        self,
        workspace_id: UUID,
        job_id: UUID,
        target: JobStatus,
        *,
        actor: str,
        expected_version: int | None = None,
        lease_id: UUID | None = None,
        worker_id: str | None = None,
        lease_seconds: float = 60.0,
        result: JsonValue = None,
        error: str | None = None,
        reason: str | None = None,
    ) -> Job:
        """Move a job to a status by name, through the same decisions the named routes use."""
        validate_json(result, "result", self.limits)
        new_lease_id = uuid4()
        job = await self._decide_and_store(
            workspace_id,
            job_id,
            lambda job: (
                None
                if target == JobStatus.COMPLETED
                and rules.is_repeat_completion(job, lease_id, result)
                else rules.decide_status_request(
                    job,
                    target,
                    actor=actor,
                    lease_id=lease_id,
                    worker_id=worker_id,
                    new_lease_id=new_lease_id,
                    lease_seconds=lease_seconds,
                    result=result,
                    error=error,
                    reason=reason,
                )
            ),
            expected_version=expected_version,
        )
        if job.status == JobStatus.QUEUED:
            self.work_signal.notify(workspace_id)
        if target == JobStatus.COMPLETED:
            self.observer.jobs_completed([job])
        elif target in (JobStatus.FAILED, JobStatus.CANCELLED):
            self.observer.job_settled(job)
        return job

    # -- worker use cases ----------------------------------------------------------------

    async def claim_jobs(
        self,
        workspace_id: UUID,
        *,
        types: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        worker_id: str,
        actor: str,
        wait_seconds: float = 0.0,
        abandoned: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[Job]:
        """Claim up to `limit` jobs; with `wait_seconds`, wait that long for some to come.
        `abandoned` is asked after each wait: a caller who has gone away (an HTTP client
        that hung up) must not be handed jobs it will never receive."""
        request = ClaimRequest(types, limit, lease_seconds, worker_id, actor)
        return await self._claim(
            self.jobs.claim_jobs, workspace_id, request, wait_seconds, abandoned
        )

    async def claim_jobs_briefly(
        self,
        workspace_id: UUID,
        *,
        types: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        worker_id: str,
        actor: str,
        wait_seconds: float = 0.0,
    ) -> list[ClaimedJob]:
        """`claim_jobs` answered with `ClaimedJob`s: what a worker in this process runs
        jobs with, for fewer columns from the database than whole jobs."""
        request = ClaimRequest(types, limit, lease_seconds, worker_id, actor)
        return await self._claim(
            self.jobs.claim_jobs_briefly, workspace_id, request, wait_seconds, None
        )

    async def _claim(
        self,
        claim: Callable[[UUID, ClaimRequest], Awaitable[list[Claimed]]],
        workspace_id: UUID,
        request: ClaimRequest,
        wait_seconds: float,
        abandoned: Callable[[], Awaitable[bool]] | None,
    ) -> list[Claimed]:
        if self._on_worker_seen is not None:
            await self._on_worker_seen(workspace_id, request.worker_id)
        deadline = time.monotonic() + wait_seconds
        first = True
        while True:
            if not first and abandoned is not None and await abandoned():
                return []
            first = False
            # Watch before looking, so a job queued between the look and the wait wakes us.
            with self.work_signal.watch(workspace_id) as woken:
                claimed = await self._retrying(lambda: claim(workspace_id, request))
                remaining = deadline - time.monotonic()
                if claimed and abandoned is not None and await abandoned():
                    # The caller left while we claimed: hand the jobs straight back.
                    for job in claimed:
                        assert job.lease_id is not None
                        await self.release_job(workspace_id, job.id, job.lease_id, request.actor)
                    return []
                if claimed or remaining <= 0:
                    self.observer.jobs_claimed(claimed)
                    return claimed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), min(remaining, self.poll_interval))

    async def heartbeat(
        self, workspace_id: UUID, job_id: UUID, lease_id: UUID, lease_seconds: float
    ) -> Job:
        job = await self._guarded_report(
            workspace_id,
            job_id,
            lease_id,
            lambda _: self.jobs.extend_lease(workspace_id, job_id, lease_id, lease_seconds),
        )
        if self._on_worker_seen is not None and job.worker_id is not None:
            await self._on_worker_seen(workspace_id, job.worker_id)
        return job

    async def _guarded_report(
        self,
        workspace_id: UUID,
        job_id: UUID,
        lease_id: UUID | None,
        write: Callable[[frozenset[JobStatus]], Awaitable[R | None]],
    ) -> R:
        """A report (step, event, heartbeat) written under the job's report guard: when
        the guard misses, the domain explains why; when it would not refuse (the job
        changed in between), the write is tried again."""

        async def attempt() -> R:
            written = await write(rules.reportable_statuses(lease_id))
            if written is not None:
                return written
            await self._explain_report_miss(workspace_id, job_id, lease_id)
            raise WriteConflict(job_id)

        return await self._retrying_on_job(workspace_id, job_id, attempt)

    async def _explain_report_miss(
        self, workspace_id: UUID, job_id: UUID, lease_id: UUID | None
    ) -> None:
        """A guarded report missed: raise what the domain says about the job as it is now.
        Returning means the job would accept the report after all (it changed in between),
        and the caller tries again."""
        job = await self.require_job(workspace_id, job_id)
        rules.ensure_lease(job, lease_id)

    async def complete_job(
        self, workspace_id: UUID, job_id: UUID, lease_id: UUID, result: JsonValue, actor: str
    ) -> Job:
        [outcome] = await self.complete_jobs(
            workspace_id, [Completion(job_id, lease_id, result)], actor
        )
        if outcome.error is not None:
            raise outcome.error
        assert outcome.job is not None
        return outcome.job

    async def complete_jobs(
        self,
        workspace_id: UUID,
        completions: Sequence[Completion],
        actor: str,
        *,
        answer_jobs: bool = True,
    ) -> list[CompletionOutcome]:
        """Complete many jobs in one statement; each outcome says what became of one (a
        result that cannot be stored refuses that job alone, not the batch). With
        `answer_jobs=False` a completed job's outcome holds neither job nor error: for
        callers that only need to know (the in-process worker), the database sends back
        a few columns instead of whole rows."""
        refused: dict[int, Exception] = {}
        seen: set[UUID] = set()
        for index, completion in enumerate(completions):
            field = "result" if len(completions) == 1 else f"completions.{index}.result"
            try:
                if completion.job_id in seen:
                    raise InvalidInput(
                        f"completions.{index}.job_id", "the same job appears twice in the batch"
                    )
                seen.add(completion.job_id)
                validate_json(completion.result, field, self.limits)
            except InvalidInput as error:
                refused[index] = error
        storable = [c for index, c in enumerate(completions) if index not in refused]
        complete = self.jobs.complete_jobs if answer_jobs else self.jobs.complete_jobs_briefly
        done: Sequence[Job | CompletedJob] = await self._retrying(
            lambda: complete(workspace_id, storable, actor)
        )
        self.observer.jobs_completed(done)
        by_id = {job.id: job for job in done}
        outcomes = []
        for index, completion in enumerate(completions):
            if index in refused:
                outcomes.append(CompletionOutcome(completion.job_id, None, refused[index]))
                continue
            if (completed := by_id.get(completion.job_id)) is not None:
                job = completed if isinstance(completed, Job) else None
                outcomes.append(CompletionOutcome(completion.job_id, job, None))
                continue
            try:
                job = await self._complete_on_fresh_read(workspace_id, completion, actor)
                outcomes.append(
                    CompletionOutcome(completion.job_id, job if answer_jobs else None, None)
                )
            except (JobConflict, JobNotFound) as error:
                outcomes.append(CompletionOutcome(completion.job_id, None, error))
        return outcomes

    async def _complete_on_fresh_read(
        self, workspace_id: UUID, completion: Completion, actor: str
    ) -> Job:
        """The guarded completion missed: a repeat of the same result is fine, anything
        else is explained by the domain (lease lost, different result, not found)."""

        repeated = False

        def decide(job: Job) -> JobChange | None:
            nonlocal repeated
            repeated = rules.is_repeat_completion(job, completion.lease_id, completion.result)
            if repeated:
                return None
            return rules.decide_completion(job, completion.lease_id, completion.result, actor)

        job = await self._decide_and_store(workspace_id, completion.job_id, decide)
        if not repeated:
            self.observer.jobs_completed([job])
        return job

    async def fail_job(
        self,
        workspace_id: UUID,
        job_id: UUID,
        lease_id: UUID,
        error: str,
        *,
        retryable: bool,
        actor: str,
    ) -> Job:
        validate_text(error, "error")
        job = await self._decide_and_store(
            workspace_id,
            job_id,
            lambda job: rules.decide_failure(
                job,
                lease_id,
                error,
                retryable=retryable,
                jitter=self._rng.random(),
                actor=actor,
            ),
        )
        if job.status == JobStatus.QUEUED:
            self.work_signal.notify(workspace_id)
        self.observer.job_settled(job)
        return job

    async def release_job(
        self, workspace_id: UUID, job_id: UUID, lease_id: UUID, actor: str
    ) -> Job:
        """A worker that is shutting down hands its job back before the lease runs out."""
        job = await self._decide_and_store(
            workspace_id, job_id, lambda job: rules.decide_handback(job, lease_id, actor)
        )
        if job.status == JobStatus.QUEUED:
            self.work_signal.notify(workspace_id)
        return job

    async def report_progress(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        percent: int,
        actor: str,
        lease_id: UUID | None = None,
        message: str | None = None,
        allow_decrease: bool = False,
    ) -> Job:
        """One guarded statement (see `progress_report`); a refusal is explained by the
        domain on a fresh read."""
        if message is not None:
            validate_text(message, "message")
        change = rules.progress_report(
            job_id,
            lease_id=lease_id,
            percent=percent,
            message=message,
            allow_decrease=allow_decrease,
            actor=actor,
        )

        async def attempt() -> Job:
            stored = await self.jobs.apply_change(workspace_id, change)
            if stored is not None:
                return stored
            job = await self.require_job(workspace_id, job_id)
            rules.decide_progress(
                job,
                lease_id=lease_id,
                percent=percent,
                message=message,
                allow_decrease=allow_decrease,
                actor=actor,
            )
            raise WriteConflict(job_id)  # it would be accepted now: the job changed between

        return await self._retrying_on_job(workspace_id, job_id, attempt)

    async def append_event(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        event_type: str,
        payload: JsonValue,
        actor: str,
        lease_id: UUID | None = None,
        step_id: UUID | None = None,
    ) -> Event:
        validate_custom_event_type(event_type)
        validate_json(payload, "payload", self.limits)
        if step_id is not None and await self.jobs.get_step(job_id, step_id) is None:
            raise StepNotFound(step_id)
        event = NewEvent(event_type, actor, payload, step_id)
        written = await self._guarded_report(
            workspace_id,
            job_id,
            lease_id,
            lambda reportable: self.jobs.append_events(
                workspace_id, job_id, lease_id=lease_id, reportable=reportable, new_events=[event]
            ),
        )
        return written[0]

    async def add_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        *,
        name: str,
        phase: StepPhase,
        step_type: StepType,
        status: StepStatus,
        actor: str,
        lease_id: UUID | None = None,
    ) -> Step:
        validate_text(name, "name")
        added = await self._guarded_report(
            workspace_id,
            job_id,
            lease_id,
            lambda reportable: self.jobs.insert_step(
                workspace_id,
                job_id,
                lease_id=lease_id,
                reportable=reportable,
                name=name,
                phase=phase,
                step_type=step_type,
                decide=lambda step_id, ordinal: decide_new_step(
                    step_id, name, ordinal, status, actor
                ),
            ),
        )
        return added[0]

    async def update_step(
        self,
        workspace_id: UUID,
        job_id: UUID,
        step_id: UUID,
        *,
        actor: str,
        lease_id: UUID | None = None,
        status: StepStatus | None = None,
        output: str | None = None,
        output_stream: str = "stdout",
        tokens_input: int | None = None,
        tokens_output: int | None = None,
        duration_ms: int | None = None,
        progress_percent: int | None = None,
        message: str | None = None,
    ) -> Step:
        for field, text in (("output", output), ("message", message)):
            if text is not None:
                validate_text(text, field)
        updated = await self._guarded_report(
            workspace_id,
            job_id,
            lease_id,
            lambda reportable: self.jobs.update_step(
                workspace_id,
                job_id,
                step_id,
                lease_id=lease_id,
                reportable=reportable,
                decide=lambda step: decide_step_update(
                    step,
                    actor=actor,
                    status=status,
                    output=output,
                    output_stream=output_stream,
                    tokens_input=tokens_input,
                    tokens_output=tokens_output,
                    duration_ms=duration_ms,
                    progress_percent=progress_percent,
                    message=message,
                ),
            ),
        )
        return updated[0]

    async def list_steps(self, workspace_id: UUID, job_id: UUID) -> list[Step]:
        await self.require_job(workspace_id, job_id)
        return await self.jobs.list_steps(job_id)

    async def list_events(
        self, workspace_id: UUID, job_id: UUID, *, after_seq: int = 0, limit: int = 1000
    ) -> list[Event]:
        await self.require_job(workspace_id, job_id)
        return await self.jobs.list_events(job_id, after_seq=after_seq, limit=limit)

    async def workspace_events_after(
        self, workspace_id: UUID, after: StreamPosition, *, limit: int = 1000
    ) -> WorkspaceEventsPage:
        return await self.jobs.workspace_events_after(workspace_id, after, limit)

    async def event_position(self, workspace_id: UUID, event_id: int) -> StreamPosition | None:
        return await self.jobs.event_position(workspace_id, event_id)

    async def current_position(self, workspace_id: UUID) -> StreamPosition:
        return await self.jobs.current_position(workspace_id)

    # -- the reaper ----------------------------------------------------------------------

    async def expire_leases(self, *, limit: int = 100) -> list[Job]:
        """Take back jobs whose worker stopped heartbeating: queue them again, or fail them
        when their attempts are spent. Safe with any number of reapers at once: each change
        is a compare-and-set, so a job is taken back once and a lease extended in the
        meantime is left alone."""
        expired = await self.jobs.find_expired_leases(limit)
        reclaimed = []
        for job in expired:
            change = rules.decide_lease_expiry(job, jitter=self._rng.random())
            stored = await self.jobs.apply_change(job.workspace_id, change)
            if stored is None:
                continue  # completed, cancelled, extended or reaped by someone else first
            reclaimed.append(stored)
            self.observer.job_settled(stored)
            if stored.status == JobStatus.QUEUED:
                self.work_signal.notify(stored.workspace_id)
        self.observer.leases_expired(len(reclaimed))
        return reclaimed
