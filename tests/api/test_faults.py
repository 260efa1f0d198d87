"""Faults as a client meets them, over real HTTP: a full or read-only database is its own
problem (507 / 503 with Retry-After), logged once without a traceback; `/readyz` says
why the server cannot take work; an unexpected error is a 500 that leaves the connection
usable (a response already under way is cut off); and none of it costs the client its
keep-alive connection."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import Response, StreamingResponse

from conveyor.store import Store
from conveyor.store.connection import Database
from conveyor.store.urls import DatabaseURL
from tests.api.test_metrics_and_logs import scrape, total
from tests.conftest import settings_for
from tests.store.test_drivers import (
    fill_until_full,
    lift_size_limit,
    make_read_only,
    set_size_limit,
)
from tests.support.server import RunningServer, running_server
from tests.worker.conftest import eventually

PROBLEM = "application/problem+json"
BLOB = "x" * 4000


def local_address(response: httpx.Response) -> tuple[str, int]:
    """The client end of the connection a response came on: the same address twice means
    the same connection."""
    address: tuple[str, int] = response.extensions["network_stream"].get_extra_info("client_addr")
    return address


@pytest.fixture
async def http(server: RunningServer, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """One keep-alive connection, as a client that reuses it would have."""
    async with httpx.AsyncClient(
        base_url=server.url,
        headers={"Authorization": f"Bearer {keys['admin']}"},
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=30,
    ) as client:
        yield client


def database_of(server: RunningServer) -> Database:
    return server.runtime.store.database


async def ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def test_a_full_database_is_507_storage_full_logged_once_and_the_connection_lives(
    server: RunningServer,
    http: httpx.AsyncClient,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL's full disk needs a small file system: tests/drills")
    jobs = "/v1/workspaces/acme/jobs"
    first = await http.post(jobs, json={"type": "t"})
    assert first.status_code == 201
    connection = local_address(first)
    await set_size_limit(database_of(server), extra_pages=0)

    caplog.set_level(logging.INFO)
    caplog.clear()
    for _ in range(1000):
        full = await http.post(jobs, json={"type": "t", "payload": {"b": BLOB}})
        if full.status_code != 201:
            break
    assert full.status_code == 507, full.text
    assert full.headers["content-type"] == PROBLEM
    assert full.json()["type"] == "/problems/storage-full"
    assert int(full.headers["retry-after"]) >= 1
    failures = [record for record in caplog.records if "storage full" in record.getMessage()]
    assert len(failures) == 1, [record.getMessage() for record in failures]
    assert failures[0].levelno == logging.WARNING
    assert not [record for record in caplog.records if record.exc_info], "a traceback"
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]

    not_ready = await http.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["type"] == "/problems/storage-full"
    assert not_ready.json()["reason"] == "storage full"
    listed = await http.get(jobs)
    assert listed.status_code == 200, "reads still work"
    assert local_address(full) == local_address(listed) == connection

    await lift_size_limit(database_of(server))
    again = await http.post(jobs, json={"type": "t"})
    assert again.status_code == 201
    assert local_address(again) == connection
    await eventually(lambda: ready(http), what="ready again")


async def test_a_read_only_database_is_503_storage_read_only_and_not_ready(
    server: RunningServer,
    http: httpx.AsyncClient,
    database_url: DatabaseURL,
    caplog: pytest.LogCaptureFixture,
) -> None:
    jobs = "/v1/workspaces/acme/jobs"
    assert (await http.post(jobs, json={"type": "t"})).status_code == 201
    assert await ready(http)
    database = database_of(server)
    caplog.set_level(logging.INFO)
    if database_url.kind == "sqlite":
        async with database.write() as connection:
            await connection.execute("PRAGMA query_only = ON")
    else:
        await make_read_only(database_url, database, True)
    try:
        caplog.clear()
        refused = await http.post(jobs, json={"type": "t"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == "/problems/storage-read-only"
        assert int(refused.headers["retry-after"]) >= 1
        assert [r.levelno for r in caplog.records if "read-only" in r.getMessage()] == [
            logging.WARNING
        ]
        assert not [record for record in caplog.records if record.exc_info], "a traceback"
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["type"] == "/problems/storage-read-only"
        assert not_ready.json()["reason"] == "storage read-only"
        listed = await http.get(jobs)
        assert listed.status_code == 200
        assert local_address(listed) == local_address(refused)
    finally:
        if database_url.kind == "sqlite":
            async with database.write() as connection:
                await connection.execute("PRAGMA query_only = OFF")
        else:
            await make_read_only(database_url, database, False)
    assert (await http.post(jobs, json={"type": "t"})).status_code == 201
    await eventually(lambda: ready(http), what="ready again")


async def test_readiness_sees_a_full_database_before_a_write_fails_on_it(
    server: RunningServer, http: httpx.AsyncClient, store: Store, backend: str
) -> None:
    """No write of the server's has failed: its own probe finds no room."""
    if backend != "sqlite":
        pytest.skip("SQLite's size limit")
    async with store.database.write() as connection:  # another process, filling the file
        await connection.execute("CREATE TABLE filler (b BLOB)")
    await set_size_limit(store.database, extra_pages=0)

    async def insert() -> None:
        async with store.database.write() as connection:
            await connection.execute("INSERT INTO filler VALUES (zeroblob(4000))")

    tables = iter(range(1_000_000))

    async def create_table() -> None:  # a page each: the free pages a row could not use
        async with store.database.write() as connection:
            await connection.execute(f"CREATE TABLE filler_{next(tables)} (b BLOB)")

    await fill_until_full(insert)
    await fill_until_full(create_table)
    assert await ready(http)
    await set_size_limit(database_of(server), extra_pages=0)

    async def full() -> bool:
        answer = await http.get("/readyz")
        return answer.status_code == 503 and answer.json()["type"] == "/problems/storage-full"

    await eventually(full, what="readiness to see the full database")
    await lift_size_limit(database_of(server))
    await eventually(lambda: ready(http), what="ready again")


def add_failing_routes(app: FastAPI) -> None:
    """Routes with a bug, for these tests only."""

    async def broken() -> Response:
        raise RuntimeError("a bug in a route")

    async def broken_midway() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"the first part\n"
            raise RuntimeError("a bug halfway through a response")

        return StreamingResponse(body(), media_type="text/plain")

    app.add_api_route("/test/broken", broken)
    app.add_api_route("/test/broken-midway", broken_midway)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


async def test_an_unexpected_error_is_a_500_problem_and_the_connection_lives(
    server: RunningServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    add_failing_routes(server.server.config.app)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    before = await http.get("/healthz")
    caplog.clear()
    failed = await http.get("/test/broken")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == PROBLEM
    assert failed.json()["type"] == "/problems/internal-error"
    assert "a bug" not in failed.text, "the details stay in the log"
    after = await http.get("/healthz")
    assert after.status_code == 200
    assert local_address(before) == local_address(failed) == local_address(after)
    logged = tracebacks(caplog)
    assert len(logged) == 1, [record.getMessage() for record in caplog.records]
    assert "a bug in a route" in str(logged[0].exc_info[1])  # type: ignore[index]
    assert "/test/broken" in logged[0].getMessage()
    assert not [r for r in caplog.records if "ASGI" in r.getMessage()]


async def test_an_error_halfway_through_a_response_cuts_it_off_and_logs_once(
    server: RunningServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A response already under way cannot become a 500: the client must see it end
    before its end, not a complete-looking body."""
    add_failing_routes(server.server.config.app)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO)
    caplog.clear()

    async def read_it_all() -> None:
        async with http.stream("GET", "/test/broken-midway") as response:
            assert response.status_code == 200
            await response.aread()

    with pytest.raises(httpx.TransportError):
        await read_it_all()
    logged = tracebacks(caplog)
    assert len(logged) == 1, [record.getMessage() for record in caplog.records]
    assert "halfway" in str(logged[0].exc_info[1])  # type: ignore[index]
    assert not [r for r in caplog.records if "ASGI" in r.getMessage()]
    assert (await http.get("/healthz")).status_code == 200, "the server carries on"


async def test_a_stream_client_that_never_reads_is_disconnected_and_counted(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    """A client connects, takes the headers, and then reads nothing while events pile up
    (its receive buffer made small). The server must give up on it: end the stream,
    release its subscription, close the connection, and count it."""
    settings = settings_for(database_url, sse_send_timeout_seconds=0.5)
    async with (
        running_server(settings) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        worker = {"Authorization": f"Bearer {keys['worker']}"}
        jobs = "/v1/workspaces/acme/jobs"
        job = (
            await http.post(
                jobs, json={"type": "t"}, headers={"Authorization": f"Bearer {keys['client']}"}
            )
        ).json()
        [claimed] = (
            await http.post("/v1/workspaces/acme/claims", json={"worker_id": "w"}, headers=worker)
        ).json()["data"]

        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        host, port = server.url.removeprefix("http://").split(":")
        await loop.sock_connect(sock, (host, int(port)))
        request = (
            f"GET {jobs}/{job['id']}/events/stream HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {keys['client']}\r\nAccept: text/event-stream\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 1024), 10)
            assert chunk, "the server closed the stream before answering"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200")

        async def streams_open() -> float:
            return total(await scrape(server), "conveyor_sse_streams")

        async def slow_disconnects() -> float:
            return total(
                await scrape(server), "conveyor_sse_clients_disconnected_total", reason="slow"
            )

        await eventually(lambda: _equals(streams_open(), 1), what="the stream to open")
        blob = "x" * 200_000
        for tick in range(200):  # far more than every buffer between us and the server
            appended = await http.post(
                f"{jobs}/{job['id']}/events",
                json={
                    "type": "test.blob",
                    "payload": {"tick": tick, "b": blob},
                    "lease_id": claimed["lease_id"],
                },
                headers=worker,
            )
            assert appended.status_code == 201
            if await slow_disconnects() >= 1:
                break
        await eventually(lambda: _equals(slow_disconnects(), 1), what="the client to be cut off")
        await eventually(lambda: _equals(streams_open(), 0), what="the stream to be released")
        assert server.runtime.hub.subscriptions == 0

        # The connection is closed from the server's side: reading what is left reaches
        # its end (or a reset) instead of waiting forever.
        async def closed() -> bool:
            try:
                while await asyncio.wait_for(loop.sock_recv(sock, 65536), 10):
                    pass
            except ConnectionResetError:
                pass
            return True

        assert await asyncio.wait_for(closed(), 30)
        sock.close()


async def _equals(value: Awaitable[float], expected: float) -> bool:
    return await value == expected
