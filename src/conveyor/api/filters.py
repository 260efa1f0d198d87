"""The job list's filters: the same names, with the same limits, in a list's query string
(`GET …/jobs?status=FAILED&type_prefix=email`) and in a bulk action's body
(`POST …/jobs/bulk/cancel {"status": ["QUEUED"], "type_prefix": "email"}`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime, Field, StringConstraints

from conveyor.api.schemas import ConcurrencyKey, SafeText, Strict
from conveyor.domain.job_lists import ERROR_CONTAINS_MAX_LENGTH, JobFilter
from conveyor.domain.job_types import JOB_TYPE_REGEX
from conveyor.domain.jobs import AGENT_TASK_ID_MAX_LENGTH, JobStatus

JobTypeText = Annotated[str, StringConstraints(pattern=JOB_TYPE_REGEX)]
AgentTaskText = Annotated[str, SafeText(max_length=AGENT_TASK_ID_MAX_LENGTH)]
WorkerIdText = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
]
IdPartText = Annotated[str, StringConstraints(max_length=36, pattern=r"^[0-9a-fA-F-]+$")]
ErrorText = Annotated[str, SafeText(1, ERROR_CONTAINS_MAX_LENGTH)]

DESCRIPTIONS = {
    "status": "one of these statuses (repeatable)",
    "type": "this type exactly",
    "type_prefix": "types that begin with this (`demo` finds `demo.fail`)",
    "agent_task_id": "this agent task",
    "concurrency_key": "this concurrency key",
    "worker_id": "run (last) by this worker",
    "error_contains": "the error holds this text, in any case",
    "created_after": "created after this moment (ISO 8601 with a time zone)",
    "created_before": "created before this moment (ISO 8601 with a time zone)",
    "q": "part of the job id, with or without dashes",
}


@dataclass(frozen=True, slots=True)
class ListFilters:
    status: list[JobStatus] | None = None
    type: str | None = None
    type_prefix: str | None = None
    agent_task_id: str | None = None
    concurrency_key: str | None = None
    worker_id: str | None = None
    error_contains: str | None = None
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    q: str | None = None

    def job_filter(self) -> JobFilter:
        return JobFilter(
            statuses=frozenset(self.status or ()),
            type=self.type,
            type_prefix=self.type_prefix,
            agent_task_id=self.agent_task_id,
            concurrency_key=self.concurrency_key,
            worker_id=self.worker_id,
            error_contains=self.error_contains,
            created_after=self.created_after,
            created_before=self.created_before,
            id_contains=self.q,
        )


def list_filters(
    status: Annotated[list[JobStatus] | None, Query(description=DESCRIPTIONS["status"])] = None,
    type: Annotated[JobTypeText | None, Query(description=DESCRIPTIONS["type"])] = None,
    type_prefix: Annotated[
        JobTypeText | None, Query(description=DESCRIPTIONS["type_prefix"])
    ] = None,
    agent_task_id: Annotated[
        AgentTaskText | None, Query(description=DESCRIPTIONS["agent_task_id"])
    ] = None,
    concurrency_key: Annotated[
        ConcurrencyKey | None, Query(description=DESCRIPTIONS["concurrency_key"])
    ] = None,
    worker_id: Annotated[WorkerIdText | None, Query(description=DESCRIPTIONS["worker_id"])] = None,
    error_contains: Annotated[
        ErrorText | None, Query(description=DESCRIPTIONS["error_contains"])
    ] = None,
    created_after: Annotated[
        AwareDatetime | None, Query(description=DESCRIPTIONS["created_after"])
    ] = None,
    created_before: Annotated[
        AwareDatetime | None, Query(description=DESCRIPTIONS["created_before"])
    ] = None,
    q: Annotated[IdPartText | None, Query(description=DESCRIPTIONS["q"])] = None,
) -> ListFilters:
    """The filters of a list request's query string."""
    return ListFilters(
        status,
        type,
        type_prefix,
        agent_task_id,
        concurrency_key,
        worker_id,
        error_contains,
        created_after,
        created_before,
        q,
    )


class FiltersIn(Strict):
    """The filters in a request body: the list query's names and limits."""

    status: list[JobStatus] | None = Field(None, description=DESCRIPTIONS["status"])
    type: JobTypeText | None = Field(None, description=DESCRIPTIONS["type"])
    type_prefix: JobTypeText | None = Field(None, description=DESCRIPTIONS["type_prefix"])
    agent_task_id: AgentTaskText | None = Field(None, description=DESCRIPTIONS["agent_task_id"])
    concurrency_key: ConcurrencyKey | None = Field(
        None, description=DESCRIPTIONS["concurrency_key"]
    )
    worker_id: WorkerIdText | None = Field(None, description=DESCRIPTIONS["worker_id"])
    error_contains: ErrorText | None = Field(None, description=DESCRIPTIONS["error_contains"])
    created_after: AwareDatetime | None = Field(None, description=DESCRIPTIONS["created_after"])
    created_before: AwareDatetime | None = Field(None, description=DESCRIPTIONS["created_before"])
    q: IdPartText | None = Field(None, description=DESCRIPTIONS["q"])

    def filters(self) -> ListFilters:
        return ListFilters(
            self.status,
            self.type,
            self.type_prefix,
            self.agent_task_id,
            self.concurrency_key,
            self.worker_id,
            self.error_contains,
            self.created_after,
            self.created_before,
            self.q,
        )
