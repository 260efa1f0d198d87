"""A worker's reports on the jobs it holds: heartbeats, completions, failures, hand-backs,
progress, steps and events.

The hot paths go straight to a write guarded by lease and status; only when it misses is
the job read, to explain why (lease lost, already completed, not found) with the domain's
own rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, NamedTuple, TypeVar
from uuid import UUID

from conveyor.domain import jobs as rules
from conveyor.domain import timeouts
from conveyor.domain.errors import InvalidInput, JobConflict, JobNotFound, StepNotFound
from conveyor.domain.events import Event, JsonValue, NewEvent, validate_custom_event_type
from conveyor.domain.jobs import Completion, Job, JobChange, JobStatus
from conveyor.domain.limits import validate_json, validate_text
from conveyor.domain.steps import (
    Step,
    StepPhase,
    StepStatus,
    StepType,
    decide_new_step,
    decide_step_update,
)
from conveyor.service.core import JobServiceCore
from conveyor.service.retry import WriteConflict
from conveyor.store.projections import AS_JOB, Completed, Projection

R = TypeVar("R")


class CompletionOutcome(NamedTuple, Generic[Completed]):
    """What became of one completion: `error` says why it was not recorded; `job` is the
    completed job, as the caller's projection has it."""

    job_id: UUID
    job: Completed | None
    error: Exception | None

    @property
    def completed(self) -> bool:
        return self.error is None


class WorkerReports(JobServiceCore):
    async def heartbeat(
        self,
        workspace_id: UUID,
        job_id: UUID,
        lease_id: UUID,
        lease_seconds: float | None = None,
    ) -> Job:
        """Extend the lease `lease_seconds` from now (None: as long as the job's claim asked
        for), never past the attempt's timeout deadline; refused once that has passed
        (`timed_out`), as when the lease is gone."""

        async def attempt() -> Job:
            extended = await self.jobs.extend_lease(
                workspace_id, job_id, lease_id, lease_seconds, self.timeout_grace_seconds
            )
            if extended is not None:
                return extended
            job = await self.require_job(workspace_id, job_id)
            timeouts.ensure_lease_extendable(
                job,
                lease_id,
                now=await self.store.clock.now(),
                grace_seconds=self.timeout_grace_seconds,
            )
            raise WriteConflict(job_id)  # it would be extended now: the job changed between

        job = await self._retrying_on_job(workspace_id, job_id, attempt)
        if self.workers is not None and job.worker_id is not None:
            await self.workers.heartbeat(workspace_id, job.worker_id)
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
            [Completion(workspace_id, job_id, lease_id, result)], actor, AS_JOB
        )
        if outcome.error is not None:
            raise outcome.error
        assert outcome.job is not None
        return outcome.job

    async def complete_jobs(
        self,
        completions: Sequence[Completion],
        actor: str,
        answer: Projection[Completed],
    ) -> list[CompletionOutcome[Completed]]:
        """Complete many jobs in one statement; each outcome says what became of one (a
        result that cannot be stored refuses that job alone, not the batch), with the job
        as `answer` projects it (whole for the HTTP API; for a worker in this process, the
        few columns the metrics count)."""
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
        done = await self._retrying(lambda: self.jobs.complete_jobs(storable, actor, answer))
        self.observer.jobs_completed(done)
        by_id = {job.id: job for job in done}
        outcomes: list[CompletionOutcome[Completed]] = []
        for index, completion in enumerate(completions):
            if index in refused:
                outcomes.append(CompletionOutcome(completion.job_id, None, refused[index]))
                continue
            if (completed := by_id.get(completion.job_id)) is not None:
                outcomes.append(CompletionOutcome(completion.job_id, completed, None))
                continue
            try:
                job = await self._complete_on_fresh_read(completion, actor)
                outcomes.append(CompletionOutcome(completion.job_id, answer.from_job(job), None))
            except (JobConflict, JobNotFound) as error:
                outcomes.append(CompletionOutcome(completion.job_id, None, error))
        return outcomes

    async def _complete_on_fresh_read(self, completion: Completion, actor: str) -> Job:
        """The guarded completion missed: a repeat of the same result is fine, anything
        else is explained by the domain (lease lost, different result, not found)."""

        repeated = False

        def decide(job: Job) -> JobChange | None:
            nonlocal repeated
            repeated = rules.is_repeat_completion(job, completion.lease_id, completion.result)
            if repeated:
                return None
            return rules.decide_completion(job, completion.lease_id, completion.result, actor)

        job = await self._decide_and_store(completion.workspace_id, completion.job_id, decide)
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
        detail: str | None = None,
        timed_out: bool = False,
        timeout_seconds: float | None = None,
    ) -> Job:
        """Fail the job's attempt; `detail` (a traceback) is kept with the error. An attempt
        that `timed_out` is recorded as such (`job.timed_out`, naming `timeout_seconds`, or
        the job's own timeout when not given)."""
        validate_text(error, "error")
        if detail is not None:
            validate_text(detail, "error_detail")
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
                detail=detail,
                timed_out=timed_out,
                timeout_seconds=timeout_seconds,
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
