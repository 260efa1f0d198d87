"""Drill: a remote worker (`conveyor worker`) killed with SIGKILL in the middle of its jobs.
Their leases run out (2 s), the server's reaper takes them back, and another worker
completes them; nothing the dead worker began is lost, nothing runs after it completed."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL
from tests.drills.drill import JOB, Creates, Drill, kill, stop_worker
from tests.drills.observe import (
    Follower,
    caught_up,
    check_completed_exactly_once,
    check_events_in_order,
    check_side_file_names_only_known_jobs,
    check_workspace_stream,
    started_not_ended,
)

pytestmark = pytest.mark.slow

JOBS = 24
HANGING = range(0, JOBS, 6)
"""These jobs hang on their first attempt: the doomed worker (4 slots) is killed with all
four of its slots in the middle of one."""


async def test_a_killed_worker_s_jobs_are_taken_back_and_completed_once_by_another(
    database_url: DatabaseURL, tmp_path: Path
) -> None:
    drill = await Drill.prepare(database_url, tmp_path)
    creates = Creates({**JOB, "payload": {"seconds": 0.05}})
    async with contextlib.AsyncExitStack() as stack:
        url, _ = stack.enter_context(drill.server("server"))
        follower = await stack.enter_async_context(
            Follower(url, drill.client_key, "/v1/workspaces/acme/events/stream")
        )
        http = await stack.enter_async_context(drill.client(url))
        for number in range(JOBS):
            hang = {"hang_first": number in HANGING}
            assert await creates.create(http, f"job-{number}", hang)
        assert not creates.refused, creates.refused
        ids = set(creates.acknowledged.values())
        hanging = {creates.acknowledged[f"job-{number}"] for number in HANGING}

        doomed = stack.enter_context(drill.worker(url, "doomed", concurrency=4))
        await drill.wait_for_notes(
            lambda notes: started_not_ended(notes, "doomed") == hanging,
            "the doomed worker to be in the middle of every hanging job",
        )
        await kill(doomed)
        killed_mid_job = started_not_ended(drill.notes(), "doomed")

        rescuer = stack.enter_context(drill.worker(url, "rescuer", concurrency=4))
        await drill.wait_completed(ids)
        await caught_up(follower, drill.database, "acme")
        await stop_worker(rescuer)

    jobs, events, notes = await drill.jobs(), await drill.events(), drill.notes()
    assert killed_mid_job == hanging, f"killed in the middle of {killed_mid_job}"
    check_completed_exactly_once(ids, jobs, events, notes)
    check_events_in_order(jobs, events)
    check_side_file_names_only_known_jobs(notes, jobs)
    check_workspace_stream(follower, events)
    for job_id in sorted(hanging):
        runs = [(n.word, n.worker, n.attempt) for n in notes if n.job == job_id]
        assert runs == [("start", "doomed", 1), ("start", "rescuer", 2), ("end", "rescuer", 2)], (
            f"job {job_id} (its worker killed mid-run) ran {runs}"
        )
        types = [event.type for event in events if event.job_id == job_id]
        assert types.count("job.lease_expired") == 1, f"job {job_id}: {types}"
