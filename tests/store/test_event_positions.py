"""Workspace streams read events by position: (writing transaction, id)."""

from __future__ import annotations

import asyncpg
import pytest

from conveyor.domain.events import StreamPosition
from conveyor.domain.jobs import JobSpec
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.store import Store
from conveyor.store.urls import DatabaseURL
from tests.service.helpers import ACTOR


async def test_a_stream_starts_after_the_newest_event_and_reads_on_from_there(
    store: Store, service: JobService, workspace: Workspace
) -> None:
    assert await store.jobs.current_position(workspace.id) == StreamPosition(0, 0)
    first, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    start = await store.jobs.current_position(workspace.id)
    second, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    page = await store.jobs.workspace_events_after(workspace.id, start, 100)
    assert [(e.job_id, e.type) for e in page.events] == [
        (second.id, "job.created"),
        (second.id, "job.queued"),
    ]
    assert (page.full, page.held) == (False, False)
    assert page.reached >= page.events[-1].position
    everything = await store.jobs.workspace_events_after(workspace.id, StreamPosition(0, 0), 3)
    assert [e.job_id for e in everything.events] == [first.id, first.id, second.id]
    assert everything.full
    assert everything.reached == everything.events[-1].position
    assert await store.jobs.event_position(workspace.id, start.id) == start


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_events_restored_from_another_server_are_adopted_into_its_order(
    store: Store, service: JobService, workspace: Workspace, database_url: DatabaseURL
) -> None:
    restored, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    connection = await asyncpg.connect(database_url.url)
    try:
        # As if written on a server whose transaction ids ran far ahead of this one's.
        await connection.execute(
            "UPDATE events SET tx = tx + 1000000000 WHERE job_id = $1", restored.id
        )
    finally:
        await connection.close()
    stuck = await store.jobs.workspace_events_after(workspace.id, StreamPosition(0, 0), 100)
    assert (stuck.events, stuck.held) == ([], True), "beyond the horizon, never passed on"

    assert await store.jobs.adopt_foreign_events() == 2
    assert await store.jobs.adopt_foreign_events() == 0, "once is enough"
    written_here, _ = await service.create_job(workspace.id, JobSpec(type="t"), ACTOR)
    page = await store.jobs.workspace_events_after(workspace.id, StreamPosition(0, 0), 100)
    assert [e.job_id for e in page.events] == [restored.id] * 2 + [written_here.id] * 2
    assert not page.held
