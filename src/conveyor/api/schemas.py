"""Request and response shapes of the HTTP API.

Requests are validated by these pydantic models (unknown fields are rejected, so a typo
never passes silently). Responses are built by the `*_json` functions below straight from
domain objects and serialised by orjson; the `*Out` models describe them for OpenAPI and
the schema tests check that the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from conveyor.domain.events import EVENT_TYPE_MAX_LENGTH, Event
from conveyor.domain.jobs import (
    AGENT_TASK_ID_MAX_LENGTH,
    CLAIM_LIMIT_OVER_HTTP,
    CONCURRENCY_KEY_MAX_LENGTH,
    DEFAULT_RETRY_BACKOFF_MAX_SECONDS,
    DEFAULT_RETRY_BACKOFF_SECONDS,
    ERROR_DETAIL_MAX_CHARS,
    ERROR_MAX_CHARS,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    MAX_ATTEMPTS_LIMIT,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RETRY_BACKOFF_LIMIT_SECONDS,
    TIMEOUT_LIMIT_SECONDS,
    Job,
    JobStatus,
)
from conveyor.domain.limits import text_problem
from conveyor.domain.steps import (
    STEP_NAME_MAX_LENGTH,
    STEP_OUTPUT_MAX_CHARS,
    Step,
    StepPhase,
    StepStatus,
    StepType,
)


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


SafeText = Annotated[
    str,
    AfterValidator(_storable),
    Field(json_schema_extra={"pattern": "^[^\\u0000\\ud800-\\udfff]*$"}),
]
"""Free text both databases can store: no NUL, no lone surrogates (and the schema says so)."""

JOB_TYPE = Annotated[str, Field(pattern=r"^[a-z0-9_.:-]{1,100}$", examples=["email.send"])]
WORKER_ID = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
LEASE_SECONDS = Annotated[float, Field(gt=0, le=3600)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -------------------------------------------------------------------------------


class CreateJobIn(Strict):
    type: JOB_TYPE
    payload: Any = Field(default_factory=dict, description="JSON input; never overwritten")
    priority: int = Field(PRIORITY_DEFAULT, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    agent_task_id: SafeText | None = Field(None, min_length=1, max_length=AGENT_TASK_ID_MAX_LENGTH)
    max_attempts: int = Field(1, ge=1, le=MAX_ATTEMPTS_LIMIT)
    run_at: AwareDatetime | None = Field(None, description="not claimable before this time")
    idempotency_key: str | None = Field(None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH)
    hold: bool = Field(False, description="create PENDING; not claimable until released")
    retry_backoff_seconds: float = Field(
        DEFAULT_RETRY_BACKOFF_SECONDS, ge=0, le=RETRY_BACKOFF_LIMIT_SECONDS
    )
    retry_backoff_max_seconds: float = Field(
        DEFAULT_RETRY_BACKOFF_MAX_SECONDS, ge=0, le=RETRY_BACKOFF_LIMIT_SECONDS
    )
    concurrency_key: SafeText | None = Field(
        None,
        min_length=1,
        max_length=CONCURRENCY_KEY_MAX_LENGTH,
        description="the limit (a customer, a model API…) this job counts against",
    )
    timeout_seconds: float | None = Field(
        None,
        gt=0,
        le=TIMEOUT_LIMIT_SECONDS,
        description="how long one attempt may run before it fails as timed out",
    )


class CreateJobsIn(Strict):
    jobs: list[CreateJobIn] = Field(min_length=1, max_length=1000)


class CancelIn(Strict):
    reason: SafeText | None = Field(None, max_length=1000)


class RetryIn(Strict):
    idempotency_key: str | None = Field(None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX_LENGTH)


class ClaimIn(Strict):
    types: list[JOB_TYPE] | None = Field(None, max_length=100, description="None: any type")
    limit: int = Field(1, ge=1, le=CLAIM_LIMIT_OVER_HTTP)
    lease_seconds: LEASE_SECONDS = 30.0
    wait_seconds: float = Field(0.0, ge=0, le=60)
    worker_id: WORKER_ID


class HeartbeatIn(Strict):
    lease_id: UUID
    lease_seconds: LEASE_SECONDS = 30.0


class StatusIn(Strict):
    status: JobStatus
    lease_id: UUID | None = None
    expected_version: int | None = Field(None, ge=1)
    worker_id: WORKER_ID | None = None
    lease_seconds: LEASE_SECONDS = 30.0
    result: Any = None
    error: SafeText | None = Field(None, max_length=ERROR_MAX_CHARS)
    reason: SafeText | None = Field(None, max_length=1000)


class ProgressIn(Strict):
    progress_percent: int = Field(ge=0, le=100)
    lease_id: UUID | None = None
    message: SafeText | None = Field(None, max_length=1000)
    allow_decrease: bool = False


class StepIn(Strict):
    name: SafeText = Field(min_length=1, max_length=STEP_NAME_MAX_LENGTH)
    phase: StepPhase = StepPhase.EXECUTION
    type: StepType = StepType.COMMAND
    status: StepStatus = StepStatus.RUNNING
    lease_id: UUID | None = None


class StepUpdateIn(Strict):
    lease_id: UUID | None = None
    status: StepStatus | None = None
    output: SafeText | None = Field(None, max_length=STEP_OUTPUT_MAX_CHARS)
    output_stream: Literal["stdout", "stderr"] = "stdout"
    tokens_input: int | None = Field(None, ge=0, le=2**53)
    tokens_output: int | None = Field(None, ge=0, le=2**53)
    duration_ms: int | None = Field(None, ge=0, le=2**53)
    progress_percent: int | None = Field(None, ge=0, le=100)
    message: SafeText | None = Field(None, max_length=1000)


class EventIn(Strict):
    type: SafeText = Field(
        min_length=3, max_length=EVENT_TYPE_MAX_LENGTH, examples=["ai.tool_called"]
    )
    payload: Any = Field(default_factory=dict)
    step_id: UUID | None = None
    lease_id: UUID | None = None


class CompleteIn(Strict):
    lease_id: UUID
    result: Any = None


class CompleteManyItem(Strict):
    job_id: UUID
    lease_id: UUID
    result: Any = None


class CompleteManyIn(Strict):
    completions: list[CompleteManyItem] = Field(min_length=1, max_length=1000)


class FailIn(Strict):
    lease_id: UUID
    error: SafeText = Field(min_length=1, max_length=ERROR_MAX_CHARS)
    error_detail: SafeText | None = Field(
        None,
        max_length=4 * ERROR_DETAIL_MAX_CHARS,
        description="more about the failure (a traceback); its last "
        f"{ERROR_DETAIL_MAX_CHARS} characters are kept",
    )
    retryable: bool = False


# -- responses ------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: UUID
    workspace_id: UUID
    type: str
    status: JobStatus
    priority: int
    payload: Any
    result: Any
    error: str | None
    error_detail: str | None = None
    concurrency_key: str | None = None
    timeout_seconds: float | None = None
    progress_percent: int
    agent_task_id: str | None
    attempt: int
    max_attempts: int
    run_at: datetime
    idempotency_key: str | None
    worker_id: str | None
    lease_expires_at: datetime | None
    retry_of: UUID | None
    retry_backoff_seconds: float
    retry_backoff_max_seconds: float
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    updated_at: datetime
    version: int


class ClaimedJobOut(JobOut):
    lease_id: UUID


class StepOut(BaseModel):
    id: UUID
    job_id: UUID
    ordinal: int
    name: str
    phase: StepPhase
    type: StepType
    status: StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    tokens_input: int | None
    tokens_output: int | None
    output: str | None


class EventOut(BaseModel):
    id: int
    job_id: UUID
    seq: int
    step_id: UUID | None
    type: str
    actor: str
    payload: Any
    timestamp: datetime


class JobDetailOut(JobOut):
    steps: list[StepOut]
    events: list[EventOut]


class PageMeta(BaseModel):
    total: int
    page: int | None = Field(description="the page asked for; null for a page asked for by cursor")
    limit: int
    total_pages: int
    total_is_estimate: bool = Field(
        False,
        description="past 10,000 jobs the total is not counted: on PostgreSQL it is the "
        "planner's estimate, on SQLite 10,000 (meaning more)",
    )
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page; null on a page that is not full"
    )


class JobPageOut(BaseModel):
    data: list[JobOut]
    meta: PageMeta


class ClaimOut(BaseModel):
    data: list[ClaimedJobOut]


class CreateJobsOut(BaseModel):
    data: list[JobOut]
    created: list[bool]


class CompletionResultOut(BaseModel):
    job_id: UUID
    status: Literal["completed", "error"]
    job: JobOut | None = None
    error: dict[str, Any] | None = None


class CompleteManyOut(BaseModel):
    data: list[CompletionResultOut]


class StepListOut(BaseModel):
    data: list[StepOut]


class EventListOut(BaseModel):
    data: list[EventOut]


class ProblemOut(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


# -- serialisers ----------------------------------------------------------------------------


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "workspace_id": job.workspace_id,
        "type": job.type,
        "status": job.status.value,
        "priority": job.priority,
        "payload": job.payload,
        "result": job.result,
        "error": job.error,
        "error_detail": job.error_detail,
        "concurrency_key": job.concurrency_key,
        "timeout_seconds": job.timeout_seconds,
        "progress_percent": job.progress_percent,
        "agent_task_id": job.agent_task_id,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "run_at": job.run_at,
        "idempotency_key": job.idempotency_key,
        "worker_id": job.worker_id,
        "lease_expires_at": job.lease_expires_at,
        "retry_of": job.retry_of,
        "retry_backoff_seconds": job.retry_backoff_seconds,
        "retry_backoff_max_seconds": job.retry_backoff_max_seconds,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "updated_at": job.updated_at,
        "version": job.version,
    }


def claimed_job_json(job: Job) -> dict[str, Any]:
    """Only the worker that claimed a job sees its lease id: it is the fencing token."""
    body = job_json(job)
    body["lease_id"] = job.lease_id
    return body


def step_json(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "job_id": step.job_id,
        "ordinal": step.ordinal,
        "name": step.name,
        "phase": step.phase.value,
        "type": step.type.value,
        "status": step.status.value,
        "started_at": step.started_at,
        "completed_at": step.completed_at,
        "duration_ms": step.duration_ms,
        "tokens_input": step.tokens_input,
        "tokens_output": step.tokens_output,
        "output": step.output,
    }


def event_json(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "job_id": event.job_id,
        "seq": event.seq,
        "step_id": event.step_id,
        "type": event.type,
        "actor": event.actor,
        "payload": event.payload,
        "timestamp": event.timestamp,
    }
