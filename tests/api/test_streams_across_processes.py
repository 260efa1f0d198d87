"""Two `conveyor serve` processes on one PostgreSQL: what one writes, the other streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from conveyor.store.urls import DatabaseURL
from tests.api.test_streams import collect_until_complete
from tests.support.processes import serve_process


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_stream_on_one_server_sees_events_written_through_another(
    database_url: DatabaseURL, keys: dict[str, str], tmp_path: Path
) -> None:
    with (
        serve_process(database_url.url, tmp_path / "a.log") as server_a,
        serve_process(database_url.url, tmp_path / "b.log") as server_b,
    ):
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        worker = {"Authorization": f"Bearer {keys['worker']}"}
        async with (
            httpx.AsyncClient(base_url=f"{server_a}/v1/workspaces/acme", headers=admin) as a,
            httpx.AsyncClient(base_url=f"{server_b}/v1/workspaces/acme", timeout=10) as b,
        ):
            job_id = (await b.post("/jobs", json={"type": "t"}, headers=admin)).json()["id"]
            reader = asyncio.create_task(collect_until_complete(a, f"/jobs/{job_id}/events/stream"))
            await asyncio.sleep(0.5)
            claimed = await b.post("/claims", json={"worker_id": "w"}, headers=worker)
            lease = claimed.json()["data"][0]["lease_id"]
            for n in range(20):
                response = await b.post(
                    f"/jobs/{job_id}/events",
                    json={"type": "test.tick", "payload": {"n": n}, "lease_id": lease},
                    headers=worker,
                )
                assert response.status_code == 201
            await b.post(
                f"/jobs/{job_id}/complete", json={"lease_id": lease, "result": 1}, headers=worker
            )
            seen = await asyncio.wait_for(reader, 20)
    assert [int(e.id or 0) for e in seen[:-1]] == list(range(1, 25))
    ticks = [e.json()["payload"]["n"] for e in seen if e.event == "test.tick"]
    assert ticks == list(range(20)), "in order"
    assert seen[-1].event == "stream.complete"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_revocation_reaches_every_server_long_before_the_cache_expires(
    database_url: DatabaseURL, keys: dict[str, str], tmp_path: Path
) -> None:
    import os
    import sys
    import time

    from tests.support.processes import REPO

    cache = {"CONVEYOR_AUTH_CACHE_SECONDS": "300"}
    with (
        serve_process(database_url.url, tmp_path / "a.log", env=cache) as server_a,
        serve_process(database_url.url, tmp_path / "b.log", env=cache) as server_b,
    ):
        client_key = {"Authorization": f"Bearer {keys['client']}"}
        async with httpx.AsyncClient(timeout=10) as http:
            for server in (server_a, server_b):  # both now hold the key in their cache
                response = await http.get(f"{server}/v1/workspaces/acme/jobs", headers=client_key)
                assert response.status_code == 200
            me = (await http.get(f"{server_a}/v1/me", headers=client_key)).json()
            revoke = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "conveyor.cli.main",
                "key",
                "revoke",
                "--workspace",
                "acme",
                me["key_id"],
                "--database-url",
                database_url.url,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            assert await revoke.wait() == 0
            revoked_at = time.monotonic()
            for server in (server_a, server_b):
                while True:
                    response = await http.get(
                        f"{server}/v1/workspaces/acme/jobs", headers=client_key
                    )
                    if response.status_code == 401:
                        break
                    assert time.monotonic() - revoked_at < 10.0, "still accepted after 10 s"
                    await asyncio.sleep(0.01)
