"""Races, with real concurrent connections: on PostgreSQL each task gets its own pooled
connection; on SQLite the tasks are spread over several independently opened stores, so
they contend for the file's write lock exactly as separate processes would."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from conveyor.domain.errors import JobConflict
from conveyor.domain.jobs import JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.service.retry import RetryPolicy, WriteConflict, retry_on_conflict
from tests.service.helpers import ACTOR, job_in_status


def spread(services: list[JobService], index: int) -> JobService:
    return services[index % len(services)]


async def test_fifty_concurrent_completions_have_exactly_one_winner(
    services: list[JobService], workspace: Workspace
) -> None:
    service = services[0]
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    assert job.lease_id is not None

    async def complete(index: int) -> int:
        await spread(services, index).complete_job(
            workspace.id, job.id, job.lease_id, {"winner": index}, ACTOR
        )
        return index

    outcomes = await asyncio.gather(*(complete(i) for i in range(50)), return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if not isinstance(o, int)]
    assert len(winners) == 1, f"expected one winner, got {winners}"
    assert all(isinstance(error, JobConflict) for error in losers), Counter(map(type, losers))
    final = await service.get_job(workspace.id, job.id)
    assert final.status == JobStatus.COMPLETED
    assert final.result == {"winner": winners[0]}
    events = await service.list_events(workspace.id, job.id)
    assert [e.type for e in events].count("job.completed") == 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_hundred_concurrent_progress_reports_all_land_with_exact_version_and_seq(
    services: list[JobService], workspace: Workspace
) -> None:
    # A progress report is one statement guarded by the lease and status, not a
    # read-then-compare-and-set, so concurrent reports never conflict: each one lands.
    service = services[0]
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    start_version = job.version
    start_events = len(await service.list_events(workspace.id, job.id))

    async def progress(index: int) -> None:
        await spread(services, index).report_progress(
            workspace.id,
            job.id,
            percent=index % 101,
            lease_id=job.lease_id,
            allow_decrease=True,
            actor=ACTOR,
        )

    await asyncio.gather(*(progress(i) for i in range(100)))
    final = await service.get_job(workspace.id, job.id)
    assert final.version == start_version + 100, "a report was lost or double-counted"
    events = await service.list_events(workspace.id, job.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "seq gap or duplicate"
    progress_events = [e for e in events[start_events:] if e.type == "job.progress"]
    assert len(progress_events) == 100
    assert final.progress_percent == progress_events[-1].payload["progress_percent"]


@pytest.mark.parametrize("round_number", range(10))
async def test_cancel_racing_complete_ends_in_one_terminal_state(
    services: list[JobService], workspace: Workspace, round_number: int
) -> None:
    service = services[0]
    job = await job_in_status(service, workspace.id, JobStatus.RUNNING)
    assert job.lease_id is not None
    ordering = [
        services[1].cancel_job(workspace.id, job.id, ACTOR),
        services[2].complete_job(workspace.id, job.id, job.lease_id, {"done": True}, ACTOR),
    ]
    random.Random(round_number).shuffle(ordering)
    outcomes = await asyncio.gather(*ordering, return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, JobConflict) for o in outcomes if isinstance(o, BaseException))
    final = await service.get_job(workspace.id, job.id)
    assert final.status in (JobStatus.CANCELLED, JobStatus.COMPLETED)
    terminal = [
        e.type
        for e in await service.list_events(workspace.id, job.id)
        if e.type in ("job.cancelled", "job.completed", "job.failed")
    ]
    expected = "job.cancelled" if final.status == JobStatus.CANCELLED else "job.completed"
    assert terminal == [expected]


class TestRetryHelper:
    async def test_retries_conflicts_with_growing_backoff_then_succeeds(self) -> None:
        delays: list[float] = []
        calls = 0

        async def flaky() -> str:
            nonlocal calls
            calls += 1
            if calls < 4:
                raise WriteConflict("busy")
            return "done"

        async def record(delay: float) -> None:
            delays.append(delay)

        policy = RetryPolicy(attempts=5, base_delay=0.01, max_delay=1.0)
        result = await retry_on_conflict(flaky, policy, sleep=record, jitter=lambda: 1.0)
        assert result == "done"
        assert calls == 4
        assert delays == [0.01, 0.02, 0.04]

    async def test_gives_up_after_its_bound_and_raises_the_conflict(self) -> None:
        calls = 0

        async def always_conflicts() -> None:
            nonlocal calls
            calls += 1
            raise WriteConflict("busy")

        async def no_wait(_: float) -> None:
            return None

        policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.015)
        with pytest.raises(WriteConflict):
            await retry_on_conflict(always_conflicts, policy, sleep=no_wait)
        assert calls == 3

    async def test_caps_the_delay_and_jitters_below_it(self) -> None:
        policy = RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.05)
        assert policy.delay(9, jitter=1.0) == 0.05
        assert policy.delay(9, jitter=0.0) == 0.025, "jitter spreads over the upper half"
        assert policy.delay(1, jitter=1.0) == 0.01

    async def test_other_errors_are_not_retried(self) -> None:
        calls = 0

        async def broken() -> None:
            nonlocal calls
            calls += 1
            raise ValueError("a bug, not a race")

        with pytest.raises(ValueError, match="a bug"):
            await retry_on_conflict(broken, RetryPolicy())
        assert calls == 1
