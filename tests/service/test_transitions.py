"""Every transition through the service, on both stores: the legal ones happen and write
their event; every other one is refused and changes nothing."""

from __future__ import annotations

import itertools

import pytest

from conveyor.domain.errors import InvalidInput, JobConflict
from conveyor.domain.jobs import JobStatus, can_transition, decide_cancel
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.store import Store
from tests.service.helpers import ACTOR, job_in_status

EXPECTED_EVENT = {
    JobStatus.QUEUED: "job.queued",
    JobStatus.RUNNING: "job.started",
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in itertools.product(JobStatus, JobStatus) if pair[1] != JobStatus.PENDING],
    ids=lambda status: status.value,
)
async def test_transition(
    service: JobService, workspace: Workspace, source: JobStatus, target: JobStatus
) -> None:
    job = await job_in_status(service, workspace.id, source)
    before = await service.list_events(workspace.id, job.id)
    request = service.change_status(
        workspace.id,
        job.id,
        target,
        actor=ACTOR,
        lease_id=job.lease_id,
        worker_id="w2",
        result={"different": True},
        error="stopped",
    )
    if can_transition(source, target):
        changed = await request
        assert changed.status == target
        assert changed.version == job.version + 1
        after = await service.list_events(workspace.id, job.id)
        assert [e.type for e in after[len(before) :]] == [EXPECTED_EVENT[target]]
    else:
        with pytest.raises((JobConflict, InvalidInput)):
            await request
        unchanged = await service.get_job(workspace.id, job.id)
        assert (unchanged.status, unchanged.version) == (job.status, job.version)
        assert len(await service.list_events(workspace.id, job.id)) == len(before)


async def test_the_data_layer_refuses_a_change_the_table_does_not_allow(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    """Even a change built by hand, skipping the domain's check, cannot be stored: the
    UPDATE itself is guarded by the statuses the table allows."""
    job = await job_in_status(service, workspace.id, JobStatus.COMPLETED)
    forged = decide_cancel(await job_in_status(service, workspace.id, JobStatus.QUEUED), ACTOR)
    # Point the QUEUED job's legal cancel at the COMPLETED job, with its current version.
    from dataclasses import replace

    forged = replace(forged, job_id=job.id, expected_version=job.version)
    assert await store.jobs.apply_change(workspace.id, forged) is None
    assert (await service.get_job(workspace.id, job.id)).status == JobStatus.COMPLETED


async def test_running_to_queued_is_only_for_the_system(
    service: JobService, workspace: Workspace
) -> None:
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    with pytest.raises(JobConflict):
        await service.change_status(workspace.id, job.id, JobStatus.QUEUED, actor=ACTOR)


async def test_every_store_writes_the_events_the_domain_decides(
    service: JobService, workspace: Workspace
) -> None:
    """PostgreSQL writes creation, start and completion events in SQL (one statement per
    batch); they must say exactly what the domain's decisions say, as SQLite's do."""
    from uuid import uuid4

    from conveyor.domain.jobs import JobSpec, completion_event, decide_creation_events, start_event

    retried_from = uuid4()
    mixed = [
        JobSpec(type="t", priority=3, retry_of=retried_from),
        JobSpec(type="t", hold=True),
    ]
    alike = [JobSpec(type="u", priority=2, retry_of=retried_from)] * 2  # values sent once
    for specs in (alike, mixed):
        jobs = [job for job, _ in await service.create_jobs(workspace.id, specs, "creator")]
        for job, spec in zip(jobs, specs, strict=True):
            written = await service.list_events(workspace.id, job.id)
            expected = decide_creation_events(spec, "creator")
            assert [(e.type, e.actor, e.payload) for e in written] == [
                (e.type, e.actor, e.payload) for e in expected
            ], spec
    [claimed] = await service.claim_jobs(
        workspace.id,
        types=None,
        limit=1,
        lease_seconds=60,
        worker_id="w9",
        actor="claimer",
        answer=AS_JOB,
    )
    assert claimed.lease_id is not None
    await service.complete_job(workspace.id, claimed.id, claimed.lease_id, None, "finisher")
    written = (await service.list_events(workspace.id, claimed.id))[-2:]
    expected = [start_event(1, "w9", "claimer"), completion_event(1, "finisher")]
    assert [(e.type, e.actor, e.payload) for e in written] == [
        (e.type, e.actor, e.payload) for e in expected
    ]
