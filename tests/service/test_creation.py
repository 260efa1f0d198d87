"""What a create answers is what was stored, on both stores: the stores build the answer
from what was sent and the database's clock, not by reading every row back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from conveyor.domain.errors import BatchIdempotencyConflict, IdempotencyConflict, InvalidInput
from conveyor.domain.job_lists import JobFilter
from conveyor.domain.jobs import JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from tests.service.helpers import ACTOR

LATER = datetime.now(UTC).replace(microsecond=123456) + timedelta(hours=1)
SPECS = [
    JobSpec(type="plain", payload={"n": 1, "nested": [1, "two", None]}),
    JobSpec(type="later", run_at=LATER.astimezone(timezone(timedelta(hours=-5)))),
    JobSpec(type="held", hold=True, priority=1, agent_task_id="task-7", max_attempts=3),
    JobSpec(type="backoff", retry_backoff_seconds=2.5, retry_backoff_max_seconds=60.0),
]


async def test_a_bulk_create_answers_the_jobs_as_stored(
    service: JobService, workspace: Workspace
) -> None:
    results = await service.create_jobs(workspace.id, SPECS, ACTOR)
    assert [created for _, created in results] == [True] * len(SPECS)
    for job, _ in results:
        assert job == await service.get_job(workspace.id, job.id), job.type
    statuses = [job.status for job, _ in results]
    assert statuses == [JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.PENDING, JobStatus.QUEUED]
    assert results[1][0].run_at == LATER


async def test_a_bulk_create_with_idempotency_keys_answers_new_and_existing_jobs_as_stored(
    service: JobService, workspace: Workspace
) -> None:
    [(first, _)] = await service.create_jobs(
        workspace.id, [JobSpec(type="keyed", idempotency_key="k-1")], ACTOR
    )
    specs = [
        JobSpec(type="keyed", idempotency_key="k-1"),
        JobSpec(type="keyed", idempotency_key="k-2", run_at=LATER),
        JobSpec(type="unkeyed"),
    ]
    results = await service.create_jobs(workspace.id, specs, ACTOR)
    assert [created for _, created in results] == [False, True, True]
    assert results[0][0] == first
    for job, _ in results:
        assert job == await service.get_job(workspace.id, job.id), job.type


async def test_values_all_jobs_of_a_batch_share_are_stored_for_each_job(
    service: JobService, workspace: Workspace
) -> None:
    # PostgreSQL is sent a value every job shares once, not once per job.
    shared = JobSpec(
        type="same",
        payload={"same": True},
        priority=2,
        agent_task_id="task-9",
        max_attempts=4,
        run_at=LATER,
        hold=True,
        retry_backoff_seconds=3.0,
        retry_backoff_max_seconds=30.0,
    )
    results = await service.create_jobs(workspace.id, [shared] * 3, ACTOR)
    assert len({job.id for job, _ in results}) == 3
    for job, _ in results:
        stored = await service.get_job(workspace.id, job.id)
        assert stored == job
        assert (
            stored.type,
            stored.payload,
            stored.priority,
            stored.agent_task_id,
            stored.max_attempts,
            stored.run_at,
            stored.status,
            stored.retry_backoff_seconds,
            stored.retry_backoff_max_seconds,
        ) == ("same", {"same": True}, 2, "task-9", 4, LATER, JobStatus.PENDING, 3.0, 30.0)


async def test_an_empty_batch_creates_nothing(service: JobService, workspace: Workspace) -> None:
    assert await service.create_jobs(workspace.id, [], ACTOR) == []


async def test_a_jobs_origin_is_said_in_its_created_event_on_both_stores(
    service: JobService, workspace: Workspace
) -> None:
    origin = {"schedule_id": "s-1", "schedule": "nightly", "tick": "2026-12-05T02:30:00Z"}
    keyed = JobSpec(type="report", idempotency_key="schedule:s-1:tick", origin=origin)
    plain = JobSpec(type="report", priority=2, origin=origin)
    for spec in (keyed, plain):
        job, _ = await service.create_job(workspace.id, spec, ACTOR, server_key=True)
        [created, _queued] = await service.list_events(workspace.id, job.id, after_seq=0)
        assert created.payload == {
            "type": "report",
            "priority": spec.priority,
            "retry_of": None,
            **origin,
        }
    unscheduled, _ = await service.create_job(workspace.id, JobSpec(type="report"), ACTOR)
    [created, _queued] = await service.list_events(workspace.id, unscheduled.id, after_seq=0)
    assert set(created.payload) == {"type", "priority", "retry_of"}


async def test_a_key_used_again_with_a_payload_python_takes_for_equal_is_a_conflict(
    service: JobService, workspace: Workspace
) -> None:
    """`{"x": true}` and `{"x": 1}` are different requests (`true == 1` only in Python)."""
    await service.create_job(
        workspace.id, JobSpec(type="t", payload={"x": True}, idempotency_key="k"), ACTOR
    )
    with pytest.raises(IdempotencyConflict):
        await service.create_job(
            workspace.id, JobSpec(type="t", payload={"x": 1}, idempotency_key="k"), ACTOR
        )


async def test_a_batch_giving_one_key_to_two_requests_is_refused_before_anything_is_written(
    service: JobService, workspace: Workspace
) -> None:
    """Compared as a key held by a job is (`true` is not `1`); the same request twice is one
    job, the second answered as not created."""
    for specs, places in (
        ([JobSpec(type="g", idempotency_key="k"), JobSpec(type="h", idempotency_key="k")], (0, 1)),
        (
            [
                JobSpec(type="g", payload={"x": True}, idempotency_key="k"),
                JobSpec(type="g", idempotency_key="other"),
                JobSpec(type="g", payload={"x": 1}, idempotency_key="k"),
            ],
            (0, 2),
        ),
    ):
        with pytest.raises(BatchIdempotencyConflict) as refused:
            await service.create_jobs(workspace.id, specs, ACTOR)
        conflict = refused.value
        assert (conflict.key, conflict.first_index, conflict.index) == ("k", *places)
    listed = await service.list_jobs(workspace.id, JobFilter(), page=1, limit=10)
    assert listed.jobs == [], "a refused batch must not half-write"

    same = JobSpec(type="g", payload={"x": True}, idempotency_key="k")
    [(first, made), (again, made_again)] = await service.create_jobs(
        workspace.id, [same, same], ACTOR
    )
    assert (made, made_again, again) == (True, False, first)


async def test_a_retry_given_a_key_of_the_servers_own_is_refused(
    service: JobService, workspace: Workspace
) -> None:
    """Given no key, a retry takes `retry:<old id>`; a key the caller gives is a client's."""
    old, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    await service.cancel_job(workspace.id, old.id, ACTOR)
    for key in (f"retry:{old.id}", "schedule:x"):
        with pytest.raises(InvalidInput) as refused:
            await service.retry_job(workspace.id, old.id, ACTOR, idempotency_key=key)
        assert refused.value.field == "idempotency_key"
    retried, created = await service.retry_job(workspace.id, old.id, ACTOR)
    assert (retried.idempotency_key, retried.retry_of, created) == (f"retry:{old.id}", old.id, True)
