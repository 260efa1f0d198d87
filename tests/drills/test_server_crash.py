"""Drill: `conveyor serve` killed with SIGKILL during a burst of creates, while a remote
worker runs jobs and a client follows the workspace stream; then started again on the same
port and database, with nobody restarting the worker or the stream."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL
from tests.drills.drill import JOB, Creates, Drill, kill, stop_worker
from tests.drills.observe import (
    Follower,
    caught_up,
    check_acknowledged_exist,
    check_completed_exactly_once,
    check_events_in_order,
    check_side_file_names_only_known_jobs,
    check_workspace_stream,
)
from tests.support.postgres import free_port

pytestmark = pytest.mark.slow

PRODUCERS = 4
ACKNOWLEDGED_BEFORE_KILL = 40


async def test_a_server_killed_mid_burst_loses_no_acknowledged_job_and_runs_each_once(
    database_url: DatabaseURL, tmp_path: Path
) -> None:
    drill = await Drill.prepare(database_url, tmp_path)
    creates = Creates({**JOB, "payload": {"seconds": 0.05}})
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        url, first = stack.enter_context(drill.server("server-killed", port=port))
        worker = stack.enter_context(drill.worker(url, "worker", concurrency=4))
        follower = await stack.enter_async_context(
            Follower(url, drill.client_key, "/v1/workspaces/acme/events/stream")
        )
        http = await stack.enter_async_context(drill.client(url))

        producers = [
            asyncio.create_task(creates.until_broken(http, f"p{n}")) for n in range(PRODUCERS)
        ]
        await drill.wait_for_notes(
            lambda notes: (
                len(creates.acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
                and any(note.word == "end" for note in notes)
            ),
            "creates acknowledged and jobs running",
        )
        await kill(first)
        await asyncio.wait_for(asyncio.gather(*producers), 30)
        assert not creates.refused, f"creates refused before the kill: {creates.refused}"
        acknowledged_at_kill = len(creates.acknowledged)

        url_again, _ = stack.enter_context(drill.server("server-restarted", port=port))
        assert url_again == url
        await creates.resend_in_doubt(http)
        assert not creates.refused, f"creates refused after the restart: {creates.refused}"
        ids = set(creates.acknowledged.values())
        await drill.wait_completed(ids)
        await caught_up(follower, drill.database, "acme")
        await stop_worker(worker, gracefully=True)
        assert follower.reconnects >= 1, "the stream never broke: the drill did not drill"

    jobs, events, notes = await drill.jobs(), await drill.events(), drill.notes()
    check_acknowledged_exist(creates.acknowledged.values(), jobs)
    # Creates in flight at the kill and sent again with their key: one job each.
    keys = [job.idempotency_key for job in jobs.values()]
    assert sorted(keys) == sorted(creates.acknowledged), (
        f"jobs in the database ({len(keys)}) are not the acknowledged creates "
        f"({len(creates.acknowledged)}, {acknowledged_at_kill} before the kill)"
    )
    check_completed_exactly_once(ids, jobs, events, notes)
    check_events_in_order(jobs, events)
    check_side_file_names_only_known_jobs(notes, jobs)
    check_workspace_stream(follower, events)
