"""Request and response shapes of the HTTP API.

Requests are validated by these pydantic models (unknown fields are rejected, so a typo
never passes silently; numbers and booleans are strict: `false` is not 0, `1` not true,
`"5"` not a number). Responses are built by the `*_json` functions below straight from
domain objects and serialised by orjson; the `*Out` models describe them for OpenAPI and
the schema tests check that the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticKnownError, core_schema

from conveyor.domain.capacity import MAX_RUNNING_LIMIT, UNMADE_VERSION, WEIGHT_MAX, WEIGHT_MIN
from conveyor.domain.errors import Resource
from conveyor.domain.events import EVENT_TYPE_MAX_LENGTH, Event
from conveyor.domain.job_types import JOB_TYPE_REGEX
from conveyor.domain.jobs import (
    AGENT_TASK_ID_MAX_LENGTH,
    CLAIM_LIMIT_OVER_HTTP,
    CONCURRENCY_KEY_MAX_LENGTH,
    DEFAULT_LEASE_SECONDS,
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
from conveyor.domain.lifetime import MAX_RETENTION_DAYS
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


@dataclass(frozen=True, slots=True)
class SafeText:
    """Free text both databases can store (no NUL, no lone surrogates; the schema says so
    too) of `min_length` to `max_length` characters, as in
    `Annotated[str, SafeText(max_length=1000)]`. The bounds belong here, on the string:
    given to `Field()` for a type with a validator, pydantic checks them as a generic
    length and tells the client "items" where it means characters."""

    min_length: int | None = None
    max_length: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        bounded = core_schema.str_schema(min_length=self.min_length, max_length=self.max_length)
        return core_schema.no_info_after_validator_function(_storable, bounded)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        described = handler(schema)
        described["pattern"] = "^[^\\u0000\\ud800-\\udfff]*$"
        return described


ConcurrencyKey = Annotated[str, SafeText(1, CONCURRENCY_KEY_MAX_LENGTH)]
Note = Annotated[str, SafeText(max_length=1000)]
"""A reason or a message that comes with a change (a cancel's reason, a progress report's
message)."""


def _json_number(value: object) -> object:
    """A number as JSON writes one: Python would take `true` for 1 and `"5"` for 5. JSON
    has no NaN or infinity, though Python's parser reads `NaN`, `Infinity` and `1e400` as
    such: they are refused as not finite, as an integer field refuses them, rather than as
    outside a field's range."""
    if isinstance(value, bool | str):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise PydanticKnownError("finite_number")
    return value


Integer = Annotated[int, BeforeValidator(_json_number)]
"""An integer in a request body (`2.0` is one; `true` and `"2"` are not)."""
Number = Annotated[float, BeforeValidator(_json_number)]
"""A number in a request body (`true` and `"2"` are not)."""


# Bounded numbers for fields that may also be null: the bounds sit before the validator,
# where pydantic writes them into the JSON schema (on a union's field, or after a
# BeforeValidator, it would leave them out of the documented schema).
TimeoutSeconds = Annotated[
    float, Field(gt=0, le=TIMEOUT_LIMIT_SECONDS), BeforeValidator(_json_number)
]
Version = Annotated[int, Field(ge=1), BeforeValidator(_json_number)]
Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX), BeforeValidator(_json_number)]
MaxAttempts = Annotated[int, Field(ge=1, le=MAX_ATTEMPTS_LIMIT), BeforeValidator(_json_number)]
LimitVersion = Annotated[int, Field(ge=UNMADE_VERSION), BeforeValidator(_json_number)]
"""A limit's version as a PUT names it (`UNMADE_VERSION`: there is no such limit yet)."""
Count = Annotated[int, Field(ge=0, le=2**53), BeforeValidator(_json_number)]
Percent = Annotated[int, Field(ge=0, le=100), BeforeValidator(_json_number)]
MaxRunning = Annotated[int, Field(ge=0, le=MAX_RUNNING_LIMIT), BeforeValidator(_json_number)]
Weight = Annotated[int, Field(ge=WEIGHT_MIN, le=WEIGHT_MAX), BeforeValidator(_json_number)]
RetentionDays = Annotated[int, Field(ge=0, le=MAX_RETENTION_DAYS), BeforeValidator(_json_number)]

JOB_TYPE = Annotated[str, Field(pattern=JOB_TYPE_REGEX, examples=["email.send"])]
WORKER_ID = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
LEASE_SECONDS_MAX = 3600


LeaseSeconds = Annotated[float, Field(gt=0, le=LEASE_SECONDS_MAX), BeforeValidator(_json_number)]


def lease_seconds_field() -> Any:
    """`lease_seconds` of a claim or a start: `DEFAULT_LEASE_SECONDS` when not given."""
    return Field(
        DEFAULT_LEASE_SECONDS,
        description="seconds the lease lasts (heartbeats that name none renew it for as long)",
    )


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Patch(Strict):
    """A partial change: a field left out stays as it is. Sent as null, a field that cannot
    be null is refused (422 naming it), not taken for one left out: the client meant
    something, and a change that silently did nothing would hide it. `nullable` names the
    fields for which null is a value to set."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("must not be null")
        return value


# -- requests -------------------------------------------------------------------------------


class CreateJobIn(Strict):
    type: JOB_TYPE
    payload: Any = Field(default_factory=dict, description="JSON input; never overwritten")
    priority: Priority = PRIORITY_DEFAULT
    agent_task_id: Annotated[str, SafeText(1, AGENT_TASK_ID_MAX_LENGTH)] | None = None
    max_attempts: MaxAttempts = 1
    run_at: AwareDatetime | None = Field(None, description="not claimable before this time")
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="the same key again answers the job it made (200), or 409 with another "
        "type or payload; keys beginning with schedule: or retry: are the server's (422)",
    )
    hold: bool = Field(
        False, strict=True, description="create PENDING; not claimable until released"
    )
    retry_backoff_seconds: Number = Field(
        DEFAULT_RETRY_BACKOFF_SECONDS,
        ge=0,
        le=RETRY_BACKOFF_LIMIT_SECONDS,
        description="the wait before the first automatic retry; it doubles with each "
        "attempt, up to retry_backoff_max_seconds",
    )
    retry_backoff_max_seconds: Number = Field(
        DEFAULT_RETRY_BACKOFF_MAX_SECONDS,
        ge=0,
        le=RETRY_BACKOFF_LIMIT_SECONDS,
        description="the longest wait between automatic retries; must not be smaller than "
        "retry_backoff_seconds (422 naming this field otherwise)",
    )
    concurrency_key: ConcurrencyKey | None = Field(
        None,
        description="the limit (a customer, a model API…) this job counts against: a name a "
        "limit may have (1..200 printable characters), not beginning with `type:`",
    )
    timeout_seconds: TimeoutSeconds | None = Field(
        None,
        description="how long one attempt may run before it fails as timed out",
    )


class CreateJobsIn(Strict):
    jobs: list[CreateJobIn] = Field(min_length=1, max_length=1000)


class CancelIn(Strict):
    reason: Note | None = None


class RetryIn(Strict):
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        description="without one, retry:<this job's id>: a retry repeated answers the same "
        "new job; keys beginning with schedule: or retry: are the server's (422)",
    )


WorkspaceName = Annotated[str, Field(min_length=1, max_length=63)]


class ClaimIn(Strict):
    types: list[JOB_TYPE] | None = Field(None, max_length=100, description="None: any type")
    workspaces: list[WorkspaceName] | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="POST /v1/claims: the workspaces (names or ids) to claim from; None: "
        "every workspace the key may claim in",
    )
    limit: Integer = Field(1, ge=1, le=CLAIM_LIMIT_OVER_HTTP)
    lease_seconds: LeaseSeconds = lease_seconds_field()
    wait_seconds: Number = Field(0.0, ge=0, le=60)
    worker_id: WORKER_ID


class HeartbeatIn(Strict):
    lease_id: UUID
    lease_seconds: LeaseSeconds | None = Field(
        None,
        description="seconds the lease lasts from now; default: as long as the job's claim "
        "(or start) asked for",
    )


class StatusIn(Strict):
    status: JobStatus
    lease_id: UUID | None = None
    expected_version: Version | None = None
    worker_id: WORKER_ID | None = None
    lease_seconds: LeaseSeconds = lease_seconds_field()
    result: Any = None
    error: Annotated[str, SafeText(max_length=ERROR_MAX_CHARS)] | None = None
    reason: Note | None = None


class ProgressIn(Strict):
    progress_percent: Integer = Field(ge=0, le=100)
    lease_id: UUID | None = None
    message: Note | None = None
    allow_decrease: bool = Field(False, strict=True)


class StepIn(Strict):
    name: Annotated[str, SafeText(1, STEP_NAME_MAX_LENGTH)]
    phase: StepPhase = StepPhase.EXECUTION
    type: StepType = StepType.COMMAND
    status: StepStatus = StepStatus.RUNNING
    lease_id: UUID | None = None


class StepUpdateIn(Strict):
    lease_id: UUID | None = None
    status: StepStatus | None = None
    output: Annotated[str, SafeText(max_length=STEP_OUTPUT_MAX_CHARS)] | None = None
    output_stream: Literal["stdout", "stderr"] = "stdout"
    tokens_input: Count | None = None
    tokens_output: Count | None = None
    duration_ms: Count | None = None
    progress_percent: Percent | None = None
    message: Note | None = None


class EventIn(Strict):
    type: Annotated[str, SafeText(3, EVENT_TYPE_MAX_LENGTH)] = Field(examples=["ai.tool_called"])
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
    error: Annotated[str, SafeText(1, ERROR_MAX_CHARS)]
    error_detail: Annotated[str, SafeText(max_length=4 * ERROR_DETAIL_MAX_CHARS)] | None = Field(
        None,
        description="more about the failure (a traceback); its last "
        f"{ERROR_DETAIL_MAX_CHARS} characters are kept",
    )
    retryable: bool = Field(False, strict=True)
    timed_out: bool = Field(
        False,
        strict=True,
        description="the attempt ran past its timeout: event job.timed_out comes first, "
        "then job.retrying or job.failed",
    )
    timeout_seconds: TimeoutSeconds | None = Field(
        None,
        description="with timed_out: the timeout that ran out, when it is not the job's own "
        "(a handler's default)",
    )


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
    workspace: str = Field(description="the job's workspace, by name (its slug)")


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
    waiting_for: list[dict[str, Any]] = Field(
        default_factory=list,
        description="a QUEUED job: the limits that keep it from starting now, each as "
        "GET …/limits/{name} shows it, with `reason` (paused, full or rate)",
    )


class PageMeta(BaseModel):
    total: int
    page: int | None = Field(description="the page asked for; null for a page asked for by cursor")
    limit: int
    total_pages: int
    total_is_estimate: bool = Field(
        False,
        description="job lists: past 10,000 jobs the total is not counted: on PostgreSQL "
        "it is the planner's estimate, on SQLite 10,000 (meaning more); always false for "
        "schedules",
    )
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next page; null when nothing follows"
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
    resource: Resource | None = Field(None, description="a 404's: what was not found")


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


def claimed_job_json(job: Job, workspace: str) -> dict[str, Any]:
    """Only the worker that claimed a job sees its lease id: it is the fencing token. A
    job held under a lease says its workspace (`workspace_id`, and its name in
    `workspace`): an instance worker serves many."""
    body = job_json(job)
    body["lease_id"] = job.lease_id
    body["workspace"] = workspace
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
