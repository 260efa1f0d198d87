"""Drill: the embedded server (`conveyor serve --workers` on a SQLite file: API, streams and
workers in one process) killed with SIGKILL while clients create jobs, its workers run
them and a job's stream and the workspace's stream are open; then started again on the
same file and port. The jobs its dead workers held come back when their leases run out and
run again in the new process."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL
from tests.drills.drill import HANDLERS, JOB, Creates, Drill, kill
from tests.drills.observe import (
    Follower,
    caught_up,
    check_acknowledged_exist,
    check_completed_exactly_once,
    check_events_in_order,
    check_job_stream,
    check_side_file_names_only_known_jobs,
    check_workspace_stream,
    started_not_ended,
)
from tests.support.postgres import free_port

pytestmark = pytest.mark.slow

PRODUCERS = 3
ACKNOWLEDGED_BEFORE_KILL = 30


async def test_a_killed_embedded_server_restarts_on_its_file_and_finishes_every_job_once(
    sqlite_database: DatabaseURL, tmp_path: Path
) -> None:
    drill = await Drill.prepare(sqlite_database, tmp_path)
    creates = Creates({**JOB, "payload": {"seconds": 0.1}})
    embedded = ("--workers", "4", "--handlers", HANDLERS)
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        url, first = stack.enter_context(
            drill.server("embedded-killed", *embedded, port=port, CONVEYOR_WORKER_WORKSPACE="acme")
        )
        workspace_stream = await stack.enter_async_context(
            Follower(url, drill.client_key, "/v1/workspaces/acme/events/stream")
        )
        http = await stack.enter_async_context(drill.client(url))
        chatty = {
            **JOB,
            "type": "drill.chatty",
            "payload": {"ticks": 10, "every": 0.1, "hang_first": True},
        }
        response = await http.post("/jobs", json=chatty)
        assert response.status_code == 201, response.text
        chatty_id = str(response.json()["id"])
        job_stream = await stack.enter_async_context(
            Follower(url, drill.client_key, f"/v1/workspaces/acme/jobs/{chatty_id}/events/stream")
        )

        producers = [
            asyncio.create_task(creates.until_broken(http, f"p{n}")) for n in range(PRODUCERS)
        ]
        await drill.wait_for_notes(
            lambda notes: (
                len(creates.acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
                and chatty_id in started_not_ended(notes)
                and sum(note.word == "end" for note in notes) >= 5
            ),
            "creates acknowledged, jobs finished and the chatty job running",
        )
        await kill(first)
        running_at_kill = started_not_ended(drill.notes())
        await asyncio.wait_for(asyncio.gather(*producers), 30)
        assert not creates.refused, f"creates refused before the kill: {creates.refused}"

        stack.enter_context(
            drill.server(
                "embedded-restarted", *embedded, port=port, CONVEYOR_WORKER_WORKSPACE="acme"
            )
        )
        await creates.resend_in_doubt(http)
        assert not creates.refused, f"creates refused after the restart: {creates.refused}"
        ids = {*creates.acknowledged.values(), chatty_id}
        await drill.wait_completed(ids)
        await caught_up(workspace_stream, drill.database, "acme")
        await asyncio.wait_for(job_stream.finished(), 30)

    jobs, events, notes = await drill.jobs(), await drill.events(), drill.notes()
    assert chatty_id in running_at_kill, "the chatty job was not running at the kill"
    check_acknowledged_exist(creates.acknowledged.values(), jobs)
    assert len(jobs) == len(ids), f"{len(jobs)} jobs in the database, {len(ids)} acknowledged"
    check_completed_exactly_once(ids, jobs, events, notes)
    check_events_in_order(jobs, events)
    check_side_file_names_only_known_jobs(notes, jobs)
    for job_id in sorted(running_at_kill):
        types = [event.type for event in events if event.job_id == job_id]
        assert "job.lease_expired" in types, (
            f"job {job_id} was running in the killed process but was never taken back: {types}"
        )
    assert workspace_stream.reconnects >= 1, "the workspace stream never broke"
    assert job_stream.reconnects >= 1, "the job's stream never broke"
    check_workspace_stream(workspace_stream, events)
    check_job_stream(job_stream, jobs[chatty_id])
