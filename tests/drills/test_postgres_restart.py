"""Drill: PostgreSQL restarted with `pg_ctl restart -m immediate` (every backend killed, no
checkpoint: crash recovery on start) in the middle of a drain, under a `conveyor serve`
and a remote `conveyor worker`, with a job's stream and the workspace's stream open.

The PostgreSQL server is one of the drill's own (the suite's server is shared by every
test), started by the same helper code."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.drills.drill import JOB, Creates, Drill, stop_worker
from tests.drills.observe import (
    Follower,
    caught_up,
    check_completed_exactly_once,
    check_events_in_order,
    check_job_stream,
    check_side_file_names_only_known_jobs,
    check_workspace_stream,
)
from tests.support.postgres import postgres_of_its_own

pytestmark = pytest.mark.slow

JOBS = 60
DURABLE = {"synchronous_commit": "on"}
"""The suite's servers run with `synchronous_commit=off`: an immediate stop then loses the
last commits (and hands their transaction ids out again), which no drill should expect to
survive. `fsync` stays off: the drill kills processes, not the machine, so what PostgreSQL
wrote is in the kernel's page cache."""
ENDED_BEFORE_RESTART = 12
DOWN_SECONDS = 1.0


async def test_a_postgresql_crash_restart_mid_drain_loses_nothing_and_streams_resume_exactly(
    tmp_path: Path,
) -> None:
    async with postgres_of_its_own(DURABLE) as (postgres, database, admin):
        drill = await Drill.prepare(database, tmp_path, admin_key=admin)
        creates = Creates({**JOB, "payload": {"seconds": 0.1}})
        async with contextlib.AsyncExitStack() as stack:
            url, _ = stack.enter_context(drill.server("server"))
            workspace_stream = await stack.enter_async_context(
                Follower(url, drill.client_key, "/v1/workspaces/acme/events/stream")
            )
            http = await stack.enter_async_context(drill.client(url))
            chatty = {**JOB, "type": "drill.chatty", "payload": {"ticks": 20, "every": 0.1}}
            response = await http.post("/jobs", json=chatty)
            assert response.status_code == 201, response.text
            chatty_id = str(response.json()["id"])
            job_stream = await stack.enter_async_context(
                Follower(
                    url, drill.client_key, f"/v1/workspaces/acme/jobs/{chatty_id}/events/stream"
                )
            )
            for number in range(JOBS):
                assert await creates.create(http, f"job-{number}")
            assert not creates.refused, creates.refused
            ids = {*creates.acknowledged.values(), chatty_id}

            worker = stack.enter_context(drill.worker(url, "worker", concurrency=4))
            await drill.wait_for_notes(
                lambda notes: sum(note.word == "end" for note in notes) >= ENDED_BEFORE_RESTART,
                "the drain to be under way",
            )
            await asyncio.to_thread(postgres.restart, DOWN_SECONDS)
            ended_at_restart = sum(note.word == "end" for note in drill.notes())

            await drill.wait_completed(ids)
            await caught_up(workspace_stream, drill.database, "acme")
            await asyncio.wait_for(job_stream.finished(), 30)
            await stop_worker(worker)

        jobs, events, notes = await drill.jobs(), await drill.events(), drill.notes()
    assert ended_at_restart < len(ids), "the drain was over before PostgreSQL went down"
    check_completed_exactly_once(ids, jobs, events, notes)
    check_events_in_order(jobs, events)
    check_side_file_names_only_known_jobs(notes, jobs)
    check_workspace_stream(workspace_stream, events)
    check_job_stream(job_stream, jobs[chatty_id])
    ticks = [event for event in events if event.job_id == chatty_id and event.type == "drill.tick"]
    assert len(ticks) >= 20, f"the chatty job wrote {len(ticks)} ticks"
