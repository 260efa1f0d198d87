"""What the service refuses from workers and clients, and that a refusal changes nothing:
bad items in a completion batch, text the databases cannot store, reused idempotency
keys, retries clicked twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID, uuid4

import pytest

from conveyor.domain.errors import IdempotencyConflict, InvalidInput, JobNotFound, LeaseLost
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import CompletedJob, Completion, Job, JobSpec, JobStatus
from conveyor.domain.steps import StepPhase, StepStatus, StepType
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_COMPLETED_JOB, AS_JOB, JobService, Unobserved
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store
from tests.service.helpers import ACTOR, claim_one, job_in_status


def lease_of(job: Job) -> UUID:
    assert job.lease_id is not None, f"job {job.id} has no lease"
    return job.lease_id


async def test_a_bad_result_in_a_completion_batch_refuses_that_job_alone(
    service: JobService, workspace: Workspace
) -> None:
    await service.create_jobs(workspace.id, [JobSpec(type="test")] * 3, ACTOR)
    first, second, third = [await claim_one(service, workspace.id) for _ in range(3)]
    outcomes = await service.complete_jobs(
        [
            Completion(workspace.id, first.id, lease_of(first), {"n": 1}),
            Completion(workspace.id, second.id, lease_of(second), {"text": "nul \x00 inside"}),
            Completion(workspace.id, third.id, lease_of(third), {"n": 3}),
            Completion(workspace.id, first.id, lease_of(first), {"n": 1}),  # the same job again
        ],
        ACTOR,
        AS_JOB,
    )
    assert [outcome.job.status if outcome.job else None for outcome in outcomes] == [
        JobStatus.COMPLETED,
        None,
        JobStatus.COMPLETED,
        None,
    ]
    assert isinstance(outcomes[1].error, InvalidInput)
    assert "NUL" in str(outcomes[1].error)
    assert isinstance(outcomes[3].error, InvalidInput)
    assert "twice" in str(outcomes[3].error)
    untouched = await service.get_job(workspace.id, second.id)
    assert (untouched.status, untouched.version) == (JobStatus.RUNNING, second.version)


async def test_text_the_databases_cannot_store_is_refused_before_anything_changes(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    assert job.lease_id is not None
    with pytest.raises(InvalidInput, match="error"):
        await service.fail_job(
            workspace.id, job.id, job.lease_id, "bad\x00error", retryable=False, actor=ACTOR
        )
    with pytest.raises(InvalidInput, match="error"):
        await service.fail_job(
            workspace.id,
            job.id,
            job.lease_id,
            "\ud800 lone surrogate",
            retryable=False,
            actor=ACTOR,
        )
    step = await service.add_step(
        workspace.id,
        job.id,
        name="build",
        phase=StepPhase.EXECUTION,
        step_type=StepType.COMMAND,
        status=StepStatus.RUNNING,
        actor=ACTOR,
        lease_id=job.lease_id,
    )
    with pytest.raises(InvalidInput, match="output"):
        await service.update_step(
            workspace.id, job.id, step.id, actor=ACTOR, lease_id=job.lease_id, output="a\x00b"
        )
    after = await service.get_job_detail(workspace.id, job.id)
    assert after.job.status == JobStatus.RUNNING
    assert after.job.error is None
    assert not after.steps[0].output
    assert [event.type for event in after.events][-1] == "step.started"


async def test_an_idempotency_key_reused_for_a_different_request_is_a_conflict(
    service: JobService, workspace: Workspace
) -> None:
    spec = JobSpec(type="test", payload={"to": "a@example.com"}, idempotency_key="order-7")
    job, created = await service.create_job(workspace.id, spec, ACTOR)
    again, created_again = await service.create_job(workspace.id, spec, ACTOR)
    assert (created, created_again, again.id) == (True, False, job.id)
    other = JobSpec(type="test", payload={"to": "b@example.com"}, idempotency_key="order-7")
    with pytest.raises(IdempotencyConflict, match="order-7"):
        await service.create_job(workspace.id, other, ACTOR)
    with pytest.raises(IdempotencyConflict):
        await service.create_jobs(workspace.id, [JobSpec(type="test"), other], ACTOR)
    listed = await service.list_jobs(workspace.id, JobFilter(), page=1, limit=10)
    assert [j.id for j in listed.jobs] == [job.id], "a refused batch must not half-write"


async def test_retrying_a_failed_job_twice_at_once_makes_one_new_job(
    services: list[JobService], workspace: Workspace
) -> None:
    failed = await job_in_status(services[0], workspace.id, JobStatus.FAILED)
    results = await asyncio.gather(
        *(service.retry_job(workspace.id, failed.id, ACTOR) for service in services)
    )
    assert len({job.id for job, _ in results}) == 1, "a double click made two retries"
    assert sorted(created for _, created in results) == [False] * (len(services) - 1) + [True]
    [(new, _)] = [result for result in results if result[1]]
    assert (new.retry_of, new.status) == (failed.id, JobStatus.QUEUED)


class CompletionsSeen(Unobserved):
    def __init__(self) -> None:
        self.completed: list[Job | CompletedJob] = []

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None:
        self.completed.extend(jobs)


async def test_a_completion_batch_answered_without_jobs_settles_each_job_the_same_way(
    store: Store, workspace: Workspace
) -> None:
    seen = CompletionsSeen()
    service = JobService(store, observer=seen)
    await service.create_jobs(workspace.id, [JobSpec(type="test")] * 3, ACTOR)
    first, second, third = [await claim_one(service, workspace.id) for _ in range(3)]
    outcomes = await service.complete_jobs(
        [
            Completion(workspace.id, first.id, lease_of(first), {"n": 1}),
            Completion(workspace.id, second.id, uuid4(), {"n": 2}),  # not its lease
            Completion(workspace.id, third.id, lease_of(third), None),
        ],
        ACTOR,
        AS_COMPLETED_JOB,
    )
    assert [outcome.job_id for outcome in outcomes] == [first.id, second.id, third.id]
    assert outcomes[1].job is None
    assert [outcome.error for outcome in (outcomes[0], outcomes[2])] == [None, None]
    assert isinstance(outcomes[1].error, LeaseLost)
    stored = [await service.get_job(workspace.id, job.id) for job in (first, second, third)]
    assert [(job.status, job.result) for job in stored] == [
        (JobStatus.COMPLETED, {"n": 1}),
        (JobStatus.RUNNING, None),
        (JobStatus.COMPLETED, None),
    ]
    detail = await service.get_job_detail(workspace.id, first.id)
    assert [event.type for event in detail.events][-1] == "job.completed"
    assert [(job.id, job.started_at, job.completed_at) for job in seen.completed] == [
        (job.id, job.started_at, job.completed_at) for job in (stored[0], stored[2])
    ], "the metrics are told the same run times either way"


async def test_one_completion_batch_completes_jobs_of_many_workspaces_each_in_its_own(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """An instance worker's batch holds jobs of several workspaces: one call completes each
    in its workspace; a completion naming another workspace than its job's completes
    nothing and is explained as not found there."""
    other = await WorkspaceService(store).create_workspace("other")
    await service.create_jobs(workspace.id, [JobSpec(type="test")] * 2, ACTOR)
    await service.create_jobs(other.id, [JobSpec(type="test")], ACTOR)
    mine, misnamed = [await claim_one(service, workspace.id) for _ in range(2)]
    theirs = await claim_one(service, other.id)
    outcomes = await service.complete_jobs(
        [
            Completion(workspace.id, mine.id, lease_of(mine), {"n": 1}),
            Completion(other.id, theirs.id, lease_of(theirs), {"n": 2}),
            Completion(other.id, misnamed.id, lease_of(misnamed), {"n": 3}),
        ],
        ACTOR,
        AS_JOB,
    )
    assert [outcome.error for outcome in outcomes[:2]] == [None, None]
    assert isinstance(outcomes[2].error, JobNotFound)
    assert (await service.get_job(workspace.id, mine.id)).result == {"n": 1}
    assert (await service.get_job(other.id, theirs.id)).result == {"n": 2}
    left = await service.get_job(workspace.id, misnamed.id)
    assert (left.status, left.result) == (JobStatus.RUNNING, None)
    events = await service.get_job_detail(other.id, theirs.id)
    assert [event.workspace_id for event in events.events] == [other.id] * len(events.events)
