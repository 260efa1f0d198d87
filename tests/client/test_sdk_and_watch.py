"""The Python SDK and `conveyor jobs watch` follow a job, and resume by themselves when the
connection drops (here: the server restarts)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import threading
from typing import Any

import httpx

from conveyor.client import AsyncClient, Client
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.postgres import free_port
from tests.support.processes import REPO
from tests.support.server import running_server
from tests.worker.conftest import eventually


async def start_job(http: httpx.AsyncClient, base: str, keys: dict[str, str]) -> tuple[str, str]:
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    worker = {"Authorization": f"Bearer {keys['worker']}"}
    job_id = (await http.post(f"{base}/jobs", json={"type": "t"}, headers=admin)).json()["id"]
    claimed = await http.post(
        f"{base}/claims", json={"worker_id": "w", "lease_seconds": 600}, headers=worker
    )
    return job_id, claimed.json()["data"][0]["lease_id"]


async def report(
    http: httpx.AsyncClient, base: str, keys: dict[str, str], job_id: str, lease: str, n: int
) -> None:
    response = await http.patch(
        f"{base}/jobs/{job_id}/progress",
        json={"progress_percent": n, "lease_id": lease, "message": f"step {n}"},
        headers={"Authorization": f"Bearer {keys['worker']}"},
    )
    assert response.status_code == 200, response.text


async def test_sync_and_async_sdk_streams_resume_after_a_restart(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = f"{url}/v1/workspaces/acme"
    settings = settings_for(database_url)
    sync_seen: list[dict[str, Any]] = []
    async_seen: list[dict[str, Any]] = []

    def follow_sync(job_id: str) -> None:
        with Client(url, keys["client"]) as client:
            sync_seen.extend(client.stream_job_events(job_id))

    async def follow_async(job_id: str) -> None:
        async with AsyncClient(url, keys["client"]) as client:
            async for event in client.stream_job_events(job_id):
                async_seen.append(event)

    async with httpx.AsyncClient(timeout=10) as http:
        async with running_server(settings, port=port):
            job_id, lease = await start_job(http, base, keys)
            thread = threading.Thread(target=follow_sync, args=(job_id,))
            thread.start()
            follower = asyncio.create_task(follow_async(job_id))
            for n in range(1, 6):
                await report(http, base, keys, job_id, lease, n)

            async def both_have_eight() -> bool:
                return len(sync_seen) >= 8 and len(async_seen) >= 8

            await eventually(both_have_eight, what="eight events in both clients")
        await asyncio.sleep(0.3)
        async with running_server(settings, port=port):
            for n in range(6, 11):
                await report(http, base, keys, job_id, lease, n)
            await http.post(
                f"{base}/jobs/{job_id}/complete",
                json={"lease_id": lease, "result": {"ok": True}},
                headers={"Authorization": f"Bearer {keys['worker']}"},
            )
            await asyncio.wait_for(follower, 30)
            await asyncio.to_thread(thread.join, 30)
    for seen in (sync_seen, async_seen):
        assert [event["seq"] for event in seen[:-1]] == list(range(1, 15))
        assert seen[-1] == {"type": "stream.complete", "job_id": job_id, "status": "COMPLETED"}


async def test_conveyor_jobs_watch_prints_events_and_exits_with_the_outcome(
    database_url: DatabaseURL, keys: dict[str, str], server: Any
) -> None:
    base = f"{server.url}/v1/workspaces/acme"
    async with httpx.AsyncClient(timeout=10) as http:
        job_id, lease = await start_job(http, base, keys)
        env = {**os.environ, "PYTHONPATH": str(REPO), "CONVEYOR_API_KEY": keys["client"]}
        watcher = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "conveyor.cli.main", "jobs", "--url", server.url),
            *("watch", job_id),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        await asyncio.sleep(1.0)
        for n in (30, 60):
            await report(http, base, keys, job_id, lease, n)
        await http.post(
            f"{base}/jobs/{job_id}/fail",
            json={"lease_id": lease, "error": "disk full"},
            headers={"Authorization": f"Bearer {keys['worker']}"},
        )
        output, _ = await asyncio.wait_for(watcher.communicate(), 30)
    text = output.decode()
    assert watcher.returncode == 1, text
    for expected in (
        "job.started",
        "job.progress",
        "60% step 60",
        "job.failed",
        "disk full",
        "FAILED",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"


async def test_sdk_workspace_stream_waits_out_a_database_outage(tmp_path: Any) -> None:
    """While PostgreSQL is down the server ends the stream and answers the reconnect 503;
    the client waits that out and resumes after the last event it saw, missing nothing."""
    from tests.support.postgres import postgres_of_its_own

    async with postgres_of_its_own() as (postgres, database_url, key):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        settings = settings_for(database_url, sse_ping_seconds=0.3, auth_cache_seconds=0)
        seen: list[dict[str, Any]] = []
        wanted = 4  # two jobs, created and queued each

        client = Client(url, key)

        def follow() -> None:
            for event in client.stream_workspace_events():
                seen.append(event)
                if len(seen) == wanted:
                    return

        async with (
            contextlib.AsyncExitStack() as stack,
            running_server(settings, port=port) as server,
            httpx.AsyncClient(
                base_url=f"{url}/v1/workspaces/acme",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            ) as http,
        ):
            follower = asyncio.create_task(asyncio.to_thread(follow))
            stack.callback(client.close)  # a client still reconnecting then gives up
            hub = server.runtime.hub

            async def subscribed() -> bool:
                return hub.subscriptions > 0

            await eventually(subscribed, within=10, what="the SDK's workspace stream")
            jobs = [(await http.post("/jobs", json={"type": "t"})).json()["id"]]

            async def saw_the_first_job() -> bool:
                return len(seen) >= 2

            await eventually(saw_the_first_job, within=10, what="the first job's events")
            # A clean stop: this test server runs with synchronous_commit=off, so an
            # immediate one could lose the last commits (the key itself, say).
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(1.5)  # the stream ends; reconnects are answered 503
            assert not follower.done(), "the client gave up while the database was down"
            await asyncio.to_thread(postgres.start)
            for _ in range(100):
                response = await http.post("/jobs", json={"type": "t"})
                if response.status_code == 201:
                    jobs.append(response.json()["id"])
                    break
                await asyncio.sleep(0.1)
            await asyncio.wait_for(follower, 30)
    assert [(e["job_id"], e["type"]) for e in seen] == [
        (job, kind) for job in jobs for kind in ("job.created", "job.queued")
    ]


def test_the_async_client_has_every_call_of_the_blocking_one() -> None:
    """The same public calls, each with the same parameters (`close` is `aclose` there;
    `http` and `ws_path` are the async client's own)."""

    def calls(cls: type) -> dict[str, Any]:
        return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}

    blocking, nonblocking = calls(Client), calls(AsyncClient)
    assert set(blocking) - set(nonblocking) == {"close"}
    assert set(nonblocking) - set(blocking) == {"aclose", "http", "ws_path"}
    for name in set(blocking) & set(nonblocking):
        if isinstance(blocking[name], property) or isinstance(nonblocking[name], property):
            continue  # `workspace`: a property there, awaited here
        assert (
            inspect.signature(blocking[name]).parameters
            == inspect.signature(nonblocking[name]).parameters
        ), name


async def test_async_workspace_stream_resumes_from_where_it_started(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    """A stream from now takes the id the server gives where it starts (after a job's
    events already there): when its server goes away before any event, it resumes there,
    seeing what another server created meanwhile and nothing from before it started. Then
    the async client's `list_events` reads what the blocking client's does, and `stats`
    the same counts by status."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings_for(database_url)
    seen: list[dict[str, Any]] = []

    async def follow(client: AsyncClient) -> None:
        async for event in client.stream_workspace_events(job_types=["wanted"]):
            seen.append(event)
            if len(seen) == 4:
                return

    async with AsyncClient(url, keys["client"]) as client:
        async with running_server(settings, port=port) as first:
            before = (await client.create_job("wanted"))["id"]
            follower = asyncio.create_task(follow(client))
            hub = first.runtime.hub

            async def subscribed() -> bool:
                return hub.subscriptions > 0

            try:
                await eventually(subscribed, within=10, what="the async client's stream")
            except BaseException:
                follower.cancel()
                raise
        try:
            # The server is gone; the client reconnects until it is back. Another one (on
            # the same database, on another port) creates jobs meanwhile.
            async with running_server(settings) as other:
                assert other.url != url
                async with AsyncClient(other.url, keys["client"]) as other_client:
                    taken = [
                        (await other_client.create_job(kind))["id"]
                        for kind in ("wanted", "not", "wanted")
                    ]
            async with running_server(settings, port=port):
                done, _ = await asyncio.wait({follower}, timeout=30)
                assert done, f"the stream did not resume where it started; it saw {seen}"
                follower.result()
                events = await client.list_events(taken[0])
                stats = await client.stats()

                def read_blocking() -> tuple[list[dict[str, Any]], dict[str, Any]]:
                    with Client(url, keys["client"]) as blocking:
                        return blocking.list_events(taken[0]), blocking.stats()

                blocking_events, blocking_stats = await asyncio.to_thread(read_blocking)
        finally:
            follower.cancel()
    assert before not in {event["job_id"] for event in seen}
    wanted = [taken[0], taken[2]]
    assert [(e["job_id"], e["type"]) for e in seen] == [
        (job, kind) for job in wanted for kind in ("job.created", "job.queued")
    ]
    assert [e["type"] for e in events] == ["job.created", "job.queued"]
    assert events == blocking_events
    assert stats["by_status"] == blocking_stats["by_status"]
    assert stats["by_status"]["QUEUED"] == 4
