"""Server-Sent Events over real HTTP: order, exact resume, fan-out, clean-up, slow clients."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest

from conveyor.client.sse import EventStreamParser, ServerSentEvent, parse_lines_async
from conveyor.domain.events import StreamPosition
from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import eventually


class Worker:
    """Drives a job through the worker routes, as a remote worker would."""

    def __init__(self, client: httpx.AsyncClient, worker_key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {worker_key}", "Conveyor-Worker-Id": "w"}
        self.lease: str = ""

    async def claim(self) -> str:
        response = await self.client.post(
            "/claims", json={"worker_id": "w", "lease_seconds": 60}, headers=self.headers
        )
        [job] = response.json()["data"]
        self.lease = job["lease_id"]
        return str(job["id"])

    async def progress(self, job_id: str, percent: int) -> None:
        response = await self.client.patch(
            f"/jobs/{job_id}/progress",
            json={"progress_percent": percent, "lease_id": self.lease},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text

    async def event(self, job_id: str, payload: dict[str, Any]) -> None:
        response = await self.client.post(
            f"/jobs/{job_id}/events",
            json={"type": "test.tick", "payload": payload, "lease_id": self.lease},
            headers=self.headers,
        )
        assert response.status_code == 201, response.text

    async def complete(self, job_id: str) -> None:
        response = await self.client.post(
            f"/jobs/{job_id}/complete",
            json={"lease_id": self.lease, "result": {"ok": True}},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def worker(client: httpx.AsyncClient, keys: dict[str, str]) -> Worker:
    return Worker(client, keys["worker"])


async def sse_events(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ServerSentEvent]:
    async with client.stream("GET", path, headers=headers, timeout=30) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for event in parse_lines_async(response.aiter_lines()):
            yield event


async def collect_until_complete(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> list[ServerSentEvent]:
    seen = []
    async for event in sse_events(client, path, headers):
        seen.append(event)
        if event.event == "stream.complete":
            break
    return seen


async def test_a_job_stream_carries_every_event_in_order_then_completes(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    reader = asyncio.create_task(collect_until_complete(client, f"/jobs/{job_id}/events/stream"))
    await asyncio.sleep(0.2)
    await worker.claim()
    for percent in (10, 50, 90):
        await worker.progress(job_id, percent)
    await worker.event(job_id, {"n": 1})
    await worker.complete(job_id)
    seen = await asyncio.wait_for(reader, 15)
    assert [e.event for e in seen] == [
        "job.created",
        "job.queued",
        "job.started",
        "job.progress",
        "job.progress",
        "job.progress",
        "test.tick",
        "job.completed",
        "stream.complete",
    ]
    assert [e.id for e in seen[:-1]] == [str(seq) for seq in range(1, 9)]
    data = seen[3].json()
    assert data["payload"] == {"progress_percent": 10, "message": None}
    assert (data["job_id"], data["seq"]) == (job_id, 4)
    assert seen[-1].json() == {"job_id": job_id, "status": "COMPLETED"}


async def test_a_finished_job_s_stream_replays_and_completes_at_once(
    client: httpx.AsyncClient,
) -> None:
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    await client.post(f"/jobs/{job_id}/cancel")
    seen = await asyncio.wait_for(
        collect_until_complete(client, f"/jobs/{job_id}/events/stream"), 10
    )
    assert [e.event for e in seen] == [
        "job.created",
        "job.queued",
        "job.cancelled",
        "stream.complete",
    ]
    assert seen[-1].json()["status"] == "CANCELLED"
    tail = await collect_until_complete(
        client, f"/jobs/{job_id}/events/stream", {"Last-Event-ID": "2"}
    )
    assert [e.event for e in tail] == ["job.cancelled", "stream.complete"]
    by_query = await collect_until_complete(client, f"/jobs/{job_id}/events/stream?after_seq=3")
    assert [e.event for e in by_query] == ["stream.complete"]


async def test_resuming_with_last_event_id_never_loses_or_repeats_an_event(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    await worker.claim()
    total_ticks = 120

    async def keep_writing() -> None:
        for tick in range(total_ticks):
            await worker.event(job_id, {"tick": tick})
            await asyncio.sleep(0.005)
        await worker.complete(job_id)

    writer = asyncio.create_task(keep_writing())
    rng = random.Random(42)
    received: list[int] = []
    last = 0
    reconnects = 0
    finished = False
    while not finished:
        drop_after = rng.randint(1, 8) if reconnects < 20 else 10**9
        count = 0
        headers = {"Last-Event-ID": str(last)} if last else None
        async for event in sse_events(client, f"/jobs/{job_id}/events/stream", headers):
            if event.event == "stream.complete":
                finished = True
                break
            received.append(int(event.id or 0))
            last = int(event.id or 0)
            count += 1
            if count >= drop_after:
                break  # the client drops the connection mid-stream
        reconnects += 1
    await writer
    assert reconnects > 20, "the test should have dropped and resumed 20 times"
    assert received == list(range(1, len(received) + 1)), "a gap or a duplicate"
    detail = (await client.get(f"/jobs/{job_id}")).json()
    assert received[-1] == detail["events"][-1]["seq"]


async def test_many_streams_get_the_same_events_without_polling_the_database(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    settings = settings_for(database_url, reaper_interval_seconds=3600.0, sse_ping_seconds=0.5)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            limits=httpx.Limits(max_connections=300),
            timeout=30,
        ) as client,
    ):
        job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
        replayed = 0

        async def follow() -> list[ServerSentEvent]:
            nonlocal replayed
            seen = []
            async for event in sse_events(client, f"/jobs/{job_id}/events/stream"):
                seen.append(event)
                if len(seen) == 2:  # job.created, job.queued: its replay query is done
                    replayed += 1
                if event.event == "stream.complete":
                    break
            return seen

        streams = [asyncio.create_task(follow()) for _ in range(200)]
        runtime = server.runtime

        async def all_replayed() -> bool:
            return runtime.hub.subscriptions >= 200 and replayed == 200

        # Each stream's own replay is a query; what is measured is the idle time after.
        await eventually(all_replayed, what="200 streams subscribed and replayed")
        before = runtime.store.database.statements
        await asyncio.sleep(2.0)  # four ping intervals with 200 idle streams
        idle_statements = runtime.store.database.statements - before
        # Per-stream polling would be 200 streams x 4 pings = 800 statements. What is left
        # is the shared re-check of the one key they all use, about once per ping interval
        # (a few more on a loaded machine): a cost that does not grow with the streams.
        assert idle_statements <= 20, f"{idle_statements} statements while 200 streams idled"

        local = Worker(client, keys["worker"])
        await local.claim()
        for tick in range(5):
            await local.event(job_id, {"tick": tick})
        await local.complete(job_id)
        results = await asyncio.wait_for(asyncio.gather(*streams), 30)
        expected = [e.event for e in results[0]]
        assert expected[-2:] == ["job.completed", "stream.complete"]
        assert all([e.event for e in seen] == expected for seen in results)
        if database_url.kind == "postgresql":
            # 7 events written: the hub fetched them a few times, never once per stream.
            assert runtime.hub.fetches <= 10, runtime.hub.fetches


async def test_disconnected_clients_release_their_subscriptions(
    server: RunningServer, client: httpx.AsyncClient
) -> None:
    hub = server.runtime.hub
    baseline = hub.subscriptions
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]

    async def read_two() -> None:
        count = 0
        async for _ in sse_events(client, f"/jobs/{job_id}/events/stream"):
            count += 1
            if count == 2:
                return

    await asyncio.gather(*(read_two() for _ in range(20)))

    async def released() -> bool:
        return hub.subscriptions == baseline

    await eventually(released, within=10, what="subscriptions to be released")


async def test_a_slow_client_is_dropped_with_a_reason_and_can_resume(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    settings = settings_for(database_url, sse_buffer_events=5)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(
            base_url=f"{server.url}/v1/workspaces/acme",
            headers={"Authorization": f"Bearer {keys['admin']}"},
            timeout=30,
        ) as client,
    ):
        job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
        local = Worker(client, keys["worker"])
        await local.claim()
        big = "x" * 100_000
        async with client.stream("GET", f"/jobs/{job_id}/events/stream") as response:
            lines = response.aiter_lines()
            # Read nothing while 60 events of 100 kB pile up: far more than socket buffers.
            for tick in range(60):
                await local.event(job_id, {"tick": tick, "padding": big})
            seen = [event async for event in parse_lines_async(lines)]
        assert seen[-1].event == "stream.dropped"
        assert "behind" in seen[-1].json()["reason"]
        resumed_from = int(seen[-2].id or 0)
        await local.complete(job_id)
        rest = await collect_until_complete(
            client, f"/jobs/{job_id}/events/stream", {"Last-Event-ID": str(resumed_from)}
        )
        seqs = [int(e.id or 0) for e in seen[:-1]] + [int(e.id or 0) for e in rest[:-1]]
        assert seqs == list(range(1, len(seqs) + 1))
        assert rest[-1].event == "stream.complete"


async def test_workspace_stream_filters_by_job_type_and_status(
    server: RunningServer, client: httpx.AsyncClient, worker: Worker
) -> None:
    async def first_events(path: str, count: int) -> list[ServerSentEvent]:
        seen: list[ServerSentEvent] = []
        async for event in sse_events(client, path):
            seen.append(event)
            if len(seen) == count:
                return seen
        return seen

    everything = asyncio.create_task(first_events("/events/stream", 5))
    only_reports = asyncio.create_task(first_events("/events/stream?type=report", 2))
    only_cancels = asyncio.create_task(first_events("/events/stream?status=CANCELLED", 1))
    # A workspace stream without a resume point starts now: create the jobs only once all
    # three streams are subscribed (a fixed sleep can lose that race on a loaded machine).
    hub = server.runtime.hub
    baseline = hub.subscriptions

    async def all_three_subscribed() -> bool:
        return hub.subscriptions >= baseline + 3

    await eventually(all_three_subscribed, within=10, what="three workspace streams")
    email = (await client.post("/jobs", json={"type": "email"})).json()["id"]
    report = (await client.post("/jobs", json={"type": "report"})).json()["id"]
    await client.post(f"/jobs/{email}/cancel")
    all_events = await asyncio.wait_for(everything, 10)
    assert [(e.json()["job_id"], e.event) for e in all_events] == [
        (email, "job.created"),
        (email, "job.queued"),
        (report, "job.created"),
        (report, "job.queued"),
        (email, "job.cancelled"),
    ]
    assert int(all_events[1].id or 0) > int(all_events[0].id or 0), "ids are event ids"
    reports = await asyncio.wait_for(only_reports, 10)
    assert {e.json()["job_type"] for e in reports} == {"report"}
    [cancel] = await asyncio.wait_for(only_cancels, 10)
    assert (cancel.event, cancel.json()["job_id"]) == ("job.cancelled", email)

    resumed = await first_events("/events/stream?after_id=" + str(all_events[2].id), 2)
    assert [e.id for e in resumed] == [all_events[3].id, all_events[4].id]
    by_seq = await first_events("/events/stream?after_seq=" + str(all_events[2].id), 2)
    assert [e.id for e in by_seq] == [e.id for e in resumed], "after_seq is after_id's name too"
    both = await client.get(
        "/events/stream", params={"after_id": all_events[2].id, "after_seq": all_events[3].id}
    )
    assert both.status_code == 422
    assert both.json()["errors"][0]["field"] == "after_seq"


class WorkspaceFollower:
    """A client on the workspace stream, in the background, that can hang up."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.seen: list[ServerSentEvent] = []
        self._task = asyncio.create_task(self._follow(client, headers))

    async def _follow(self, client: httpx.AsyncClient, headers: dict[str, str] | None) -> None:
        async for event in sse_events(client, "/events/stream", headers):
            self.seen.append(event)

    def ticks(self) -> list[str]:
        return [e.json()["payload"]["from"] for e in self.seen if e.event == "test.tick"]

    async def hang_up(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def workspace_followers(
    server: RunningServer, client: httpx.AsyncClient, count: int
) -> list[WorkspaceFollower]:
    """`count` clients on the workspace stream, returned once the server has them all."""
    hub = server.runtime.hub
    baseline = hub.subscriptions
    followers = [WorkspaceFollower(client) for _ in range(count)]

    async def all_subscribed() -> bool:
        return hub.subscriptions >= baseline + count

    await eventually(all_subscribed, within=10, what=f"{count} workspace stream(s)")
    return followers


async def tick(client: httpx.AsyncClient, keys: dict[str, str], job_id: str, name: str) -> None:
    """An event on a queued job, written and committed through the API."""
    response = await client.post(
        f"/jobs/{job_id}/events",
        json={"type": "test.tick", "payload": {"from": name}},
        headers={"Authorization": f"Bearer {keys['worker']}"},
    )
    assert response.status_code == 201, response.text


async def begin_slow_transaction(database_url: DatabaseURL, job_id: str, *, tick: bool) -> Any:
    """A transaction that writes (optionally an event on the job, as the API would) and
    then stays open: a commit that takes long, as under load."""
    import asyncpg

    connection = await asyncpg.connect(database_url.url)
    await connection.execute("BEGIN")
    row = await connection.fetchrow(
        "UPDATE jobs SET last_event_seq = last_event_seq + $2 WHERE id = $1 "
        "RETURNING workspace_id, type, last_event_seq",
        UUID(job_id),
        1 if tick else 0,
    )
    if tick:
        await connection.execute(
            "INSERT INTO events (job_id, workspace_id, job_type, seq, type, actor, payload, "
            "created_at) VALUES ($1, $2, $3, $4, 'test.tick', 'test', $5::jsonb, now())",
            UUID(job_id),
            row["workspace_id"],
            row["type"],
            row["last_event_seq"],
            '{"from": "slow"}',
        )
    return connection


async def held_back(
    server: RunningServer, database_url: DatabaseURL, job_id: str, name: str, fetches: int
) -> bool:
    """The hub's feed has read the workspace since `fetches` and holds back the tick
    `name` of `job_id`: it has looked at it and not passed it on. (Observed in the hub,
    which decides; what a client has received by some moment proves nothing either way.)"""
    import asyncpg

    hub = server.runtime.hub
    connection = await asyncpg.connect(database_url.url)
    try:
        row = await connection.fetchrow(
            "SELECT workspace_id, tx, id FROM events WHERE job_id = $1 AND payload->>'from' = $2",
            UUID(job_id),
            name,
        )
    finally:
        await connection.close()
    assert row is not None
    feed = hub._feeds.get(row["workspace_id"])
    looked = hub.fetches > fetches and row["workspace_id"] in hub._held_feeds
    assert feed is None or feed < StreamPosition(row["tx"], row["id"]), (
        f"the feed passed the tick {name!r} on while an older transaction could still commit"
    )
    return looked


async def until_sentinel(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    job_id: str,
    *followers: WorkspaceFollower,
) -> None:
    """One more tick, awaited on every follower: a stream sends in order, so whatever it
    would send before the sentinel (a duplicate, say) has arrived once the sentinel has."""
    await tick(client, keys, job_id, "sentinel")

    async def arrived() -> bool:
        return all("sentinel" in follower.ticks() for follower in followers)

    await eventually(arrived, within=10, what="the sentinel tick on every stream")


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_workspace_stream_resumes_exactly_when_transactions_commit_out_of_id_order(
    server: RunningServer,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: DatabaseURL,
) -> None:
    # A slow transaction takes an event id, then a fast one takes the next id and commits
    # first. A client that saw the fast event, hung up, and resumed after it must still
    # get the slow one once it commits.
    slow_job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    fast_job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    staying, leaving = await workspace_followers(server, client, 2)
    await tick(client, keys, fast_job, "before")

    async def saw_before() -> bool:
        return leaving.ticks() == ["before"]

    await eventually(saw_before, within=10, what="the first tick on the leaving stream")

    slow = await begin_slow_transaction(database_url, slow_job, tick=True)
    try:
        fetches = server.runtime.hub.fetches
        await tick(client, keys, fast_job, "fast")

        async def fast_held_back() -> bool:
            return await held_back(server, database_url, fast_job, "fast", fetches)

        await eventually(fast_held_back, within=10, what="the feed to hold the fast tick")
        assert leaving.ticks() == ["before"], (
            "an event was passed on while an older transaction could still commit behind it"
        )
        await leaving.hang_up()
        await slow.execute("COMMIT")
    finally:
        await slow.close()
    resumed = WorkspaceFollower(client, {"Last-Event-ID": str(leaving.seen[-1].id)})

    async def resumed_has_both() -> bool:
        return len(resumed.ticks()) >= 2 and len(staying.ticks()) >= 3

    await eventually(resumed_has_both, within=10, what="the slow and the fast tick")
    await until_sentinel(client, keys, fast_job, resumed, staying)
    await resumed.hang_up()
    await staying.hang_up()
    assert leaving.ticks() + resumed.ticks() == ["before", "slow", "fast", "sentinel"]
    assert staying.ticks() == ["before", "slow", "fast", "sentinel"], "older transaction first"
    sent = [(e.json()["job_id"], e.json()["seq"]) for e in leaving.seen + resumed.seen]
    assert len(sent) == len(set(sent)), "no event twice across the reconnect"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_an_event_held_behind_a_transaction_without_events_follows_once_it_ends(
    server: RunningServer,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: DatabaseURL,
) -> None:
    other_job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    [follower] = await workspace_followers(server, client, 1)
    slow = await begin_slow_transaction(database_url, other_job, tick=False)
    try:
        fetches = server.runtime.hub.fetches
        await tick(client, keys, job, "held")

        async def is_held_back() -> bool:
            return await held_back(server, database_url, job, "held", fetches)

        await eventually(is_held_back, within=10, what="the feed to hold the tick back")
        assert follower.ticks() == [], "passed on while an older transaction still runs"
        await slow.execute("COMMIT")  # commits no event, so no notice: the hub looks again
    finally:
        await slow.close()

    async def arrived() -> bool:
        return follower.ticks() == ["held"]

    await eventually(arrived, within=10, what="the held event after the transaction ended")
    await follower.hang_up()


async def test_workspace_stream_resumes_from_the_start_but_not_after_an_unknown_event(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    other = {"Authorization": f"Bearer {keys['other']}"}
    async with httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/other") as elsewhere:
        foreign = (await elsewhere.post("/jobs", json={"type": "t"}, headers=other)).json()
        events = (await elsewhere.get(f"/jobs/{foreign['id']}/events", headers=other)).json()
    foreign_event = str(events["data"][0]["id"])
    for asked in (
        {"headers": {"Last-Event-ID": foreign_event}},
        {"headers": {"Last-Event-ID": "999999999"}},
        {"params": {"after_id": foreign_event}},
        {"params": {"after_seq": foreign_event}},
        {"headers": {"Last-Event-ID": str(2**63)}},
    ):
        response = await client.get("/events/stream", **asked)
        assert response.status_code == 422, (asked, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        named = next(iter(asked.get("params", {"Last-Event-ID": None})))
        assert response.json()["errors"][0]["field"] == named, asked

    job_stream = f"/jobs/{foreign['id']}/events/stream"
    too_far = await client.get(job_stream, headers={"Last-Event-ID": str(2**31)})
    assert too_far.status_code in (404, 422), "another workspace's job, or the bound"

    first_job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    await client.post("/jobs", json={"type": "t"})
    async for event in sse_events(client, "/events/stream?after_id=0"):
        assert (event.json()["job_id"], event.event) == (first_job, "job.created")
        break


async def test_a_workspace_stream_says_where_it_starts_so_an_early_hang_up_loses_nothing(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/jobs", json={"type": "t"})  # history before the stream starts
    parser = EventStreamParser()
    async with client.stream("GET", "/events/stream", timeout=30) as response:
        async for line in response.aiter_lines():
            parser.feed(line)
            if parser.last_event_id is not None:
                break  # hang up before any event
    start = parser.last_event_id
    assert start is not None, "the stream's first frames name an id"
    assert start.isdigit(), start
    job = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    resumed = []
    async for event in sse_events(client, "/events/stream", {"Last-Event-ID": start}):
        resumed.append((event.json()["job_id"], event.event))
        if len(resumed) == 2:
            break
    assert resumed == [(job, "job.created"), (job, "job.queued")]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_workspace_streams_carry_on_without_a_gap_when_notices_may_have_been_lost(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    [follower] = await workspace_followers(server, client, 1)
    created = [(await client.post("/jobs", json={"type": "t"})).json()["id"] for _ in range(3)]
    server.runtime.hub.catch_up_all()  # what the listener does after reconnecting
    created += [(await client.post("/jobs", json={"type": "t"})).json()["id"] for _ in range(3)]

    async def all_arrived() -> bool:
        return len(follower.seen) >= 12

    await eventually(all_arrived, within=10, what="the events of six jobs")
    await until_sentinel(client, keys, created[-1], follower)
    await follower.hang_up()
    got = [(e.json()["job_id"], e.event) for e in follower.seen if e.event != "test.tick"]
    assert got == [(job, kind) for job in created for kind in ("job.created", "job.queued")]
    assert follower.ticks() == ["sentinel"]


async def test_streams_need_a_key_and_the_right_workspace(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    job_id = (await client.post("/jobs", json={"type": "t"})).json()["id"]
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        path = f"/v1/workspaces/acme/jobs/{job_id}/events/stream"
        assert (await anonymous.get(path)).status_code == 401
        other = {"Authorization": f"Bearer {keys['other']}"}
        assert (await anonymous.get(path, headers=other)).status_code == 404
        bad_resume = await client.get(
            f"/jobs/{job_id}/events/stream", headers={"Last-Event-ID": "abc"}
        )
        assert bad_resume.status_code == 422


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
async def test_revoking_a_key_ends_its_open_streams(
    database_url: DatabaseURL, keys: dict[str, str], busy: bool
) -> None:
    settings = settings_for(database_url, sse_ping_seconds=0.5)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(base_url=f"{server.url}/v1/workspaces/acme", timeout=30) as http,
    ):
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        issued = (await http.post("/keys", json={"role": "client"}, headers=admin)).json()
        job_id = (await http.post("/jobs", json={"type": "t"}, headers=admin)).json()["id"]
        local = Worker(http, keys["worker"])
        await local.claim()
        viewer = {"Authorization": f"Bearer {issued['token']}"}
        seen: list[ServerSentEvent] = []

        async def follow() -> None:
            async for event in sse_events(http, f"/jobs/{job_id}/events/stream", viewer):
                seen.append(event)

        follower = asyncio.create_task(follow())
        stop_writing = asyncio.Event()

        async def keep_writing() -> None:
            tick = 0
            while busy and not stop_writing.is_set():
                await local.event(job_id, {"tick": tick})
                tick += 1
                await asyncio.sleep(0.05)

        writer = asyncio.create_task(keep_writing())
        await asyncio.sleep(0.5)
        revoked = await http.delete(f"/keys/{issued['id']}", headers=admin)
        assert revoked.status_code == 200
        await asyncio.wait_for(follower, 10)  # the server ended the stream
        stop_writing.set()
        await writer
    assert seen[-1].event == "stream.closed"
    assert "revoked" in seen[-1].json()["reason"]
