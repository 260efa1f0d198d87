"""Property-based: random sequences of create / claim / progress / complete / fail / cancel /
retry / release from several workspaces (and requests aimed at the wrong workspace) keep
every invariant, on both stores.

Invariants, checked against what the database holds after each sequence:
* every job's events are numbered 1..n with no gap, n being the job's last_event_seq;
* the status changes in a job's event log follow the transition table from QUEUED (or
  PENDING), and end at the job's status; at most one terminal event, last;
* every event belongs to its job's workspace, and a request aimed at another workspace
  changed nothing and learned nothing (it raised JobNotFound, and nothing else);
* operations only ever fail with the domain's own errors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.domain.errors import ConveyorError, JobNotFound
from conveyor.domain.jobs import JobSpec, JobStatus, can_transition
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import AS_JOB, JobService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store

STATUS_AFTER_EVENT = {
    "job.queued": JobStatus.QUEUED,
    "job.started": JobStatus.RUNNING,
    "job.completed": JobStatus.COMPLETED,
    "job.failed": JobStatus.FAILED,
    "job.cancelled": JobStatus.CANCELLED,
}
SYSTEM_REQUEUE_EVENTS = {"job.retrying", "job.lease_expired", "job.released"}
TERMINAL_EVENTS = {"job.completed", "job.failed", "job.cancelled"}
_slugs = itertools.count()


@dataclass(frozen=True)
class Op:
    name: str
    workspace: int
    job: int
    value: int
    wrong_workspace: bool


operations = st.builds(
    Op,
    name=st.sampled_from(
        ["create", "create", "claim", "progress", "complete", "fail", "cancel", "retry", "release"]
    ),
    workspace=st.integers(0, 2),
    job=st.integers(0, 50),
    value=st.integers(0, 100),
    wrong_workspace=st.sampled_from([False, False, False, True]),
)


class World:
    """The jobs the sequence created, and the lease each was last claimed under."""

    def __init__(self, service: JobService, workspaces: list[Workspace]) -> None:
        self.service = service
        self.workspaces = workspaces
        self.jobs: list[tuple[UUID, UUID]] = []  # (workspace id, job id)
        self.leases: dict[UUID, UUID] = {}

    def pick(self, op: Op) -> tuple[UUID, UUID] | None:
        if not self.jobs:
            return None
        return self.jobs[op.job % len(self.jobs)]

    async def run(self, op: Op) -> None:
        ws = self.workspaces[op.workspace].id
        if op.name == "create":
            job, _ = await self.service.create_job(
                ws,
                JobSpec(
                    type=f"t{op.value % 3}",
                    max_attempts=1 + op.value % 3,
                    retry_backoff_seconds=0,
                    hold=op.value % 7 == 0,
                ),
                "prop",
            )
            self.jobs.append((ws, job.id))
            return
        if op.name == "claim":
            for job in await self.service.claim_jobs(
                ws,
                types=None,
                limit=1 + op.value % 4,
                lease_seconds=60,
                worker_id="w",
                actor="w",
                answer=AS_JOB,
            ):
                assert job.lease_id is not None
                self.leases[job.id] = job.lease_id
            return
        picked = self.pick(op)
        if picked is None:
            return
        owner, job_id = picked
        target_ws = owner
        if op.wrong_workspace:
            target_ws = next(w.id for w in self.workspaces if w.id != owner)
        lease = self.leases.get(job_id, UUID(int=op.value))
        call: Any
        if op.name == "progress":
            call = self.service.report_progress(
                target_ws, job_id, percent=op.value, lease_id=lease, actor="w", allow_decrease=True
            )
        elif op.name == "complete":
            call = self.service.complete_job(target_ws, job_id, lease, {"v": op.value}, "w")
        elif op.name == "fail":
            call = self.service.fail_job(
                target_ws, job_id, lease, "boom", retryable=op.value % 2 == 0, actor="w"
            )
        elif op.name == "cancel":
            call = self.service.cancel_job(target_ws, job_id, "c")
        elif op.name == "retry":
            call = self.service.retry_job(target_ws, job_id, "c")
        else:
            call = self.service.release_job(target_ws, job_id, lease, "w")
        before = await self.service.jobs.get_job(owner, job_id)
        try:
            result = await call
        except JobNotFound:
            assert op.wrong_workspace, f"{op.name} on a job of its own workspace: not found"
        except ConveyorError as error:
            refused_with = type(error).__name__
            # Another workspace's job does not exist for the caller: not found, never a
            # conflict or a lease error that would tell it the job is there.
            assert not op.wrong_workspace, (
                f"{op.name} aimed at another workspace's job: {refused_with}, not JobNotFound"
            )
        else:
            assert not op.wrong_workspace, f"{op.name} reached into another workspace"
            if op.name == "retry":
                new_job, _ = result
                self.jobs.append((owner, new_job.id))
        if op.wrong_workspace:
            assert await self.service.jobs.get_job(owner, job_id) == before, (
                "cross-workspace change"
            )


async def check_invariants(store: Store, world: World) -> None:
    for workspace_id, job_id in world.jobs:
        job = await store.jobs.get_job(workspace_id, job_id)
        assert job is not None, "a created job disappeared"
        events = await store.jobs.list_events(job_id, after_seq=0, limit=10_000)
        assert [e.seq for e in events] == list(range(1, job.last_event_seq + 1)), "seq gap"
        assert all(e.workspace_id == workspace_id for e in events), "event in another workspace"
        terminal = [e for e in events if e.type in TERMINAL_EVENTS]
        assert len(terminal) <= 1, "more than one terminal event"
        if terminal:
            assert terminal[0] is events[-1], "an event after the terminal one"
        status = JobStatus.PENDING
        system_move = False
        for event in events:
            if event.type in SYSTEM_REQUEUE_EVENTS:
                system_move = True
            target = STATUS_AFTER_EVENT.get(event.type)
            if target is None:
                continue
            if status != target:
                assert can_transition(status, target, by_system=system_move), (
                    f"illegal {status} -> {target} in the log of {job_id}"
                )
            status = target
            system_move = False
        assert status == job.status, f"log ends at {status}, job is {job.status}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=5, max_size=40))
async def test_random_operation_sequences_keep_every_invariant(
    store: Store, service: JobService, ops: list[Op]
) -> None:
    workspace_service = WorkspaceService(store)
    workspaces = [
        await workspace_service.create_workspace(f"prop-{next(_slugs)}") for _ in range(3)
    ]
    world = World(service, workspaces)
    for op in ops:
        await world.run(op)
    await check_invariants(store, world)
