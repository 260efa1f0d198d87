"""Two servers on one database, each running its scheduler, woken together at every tick
of a clock the test moves: each tick makes exactly one job, named once as created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from conveyor.store.urls import DatabaseURL
from tests.conftest import settings_for
from tests.support.clock import FakeClock
from tests.support.server import running_server
from tests.worker.conftest import eventually

START = datetime(2026, 12, 5, 10, 0, 30, tzinfo=UTC)
TICKS = 12


async def test_two_servers_fire_each_tick_exactly_once(
    database_url: DatabaseURL, keys: dict[str, str]
) -> None:
    clock = FakeClock(START)
    settings = settings_for(database_url)
    async with running_server(settings) as first, running_server(settings) as second:
        servers = [first, second]
        for server in servers:
            server.runtime.schedules.clock = clock
        headers = {"Authorization": f"Bearer {keys['admin']}"}
        async with (
            httpx.AsyncClient(
                base_url=f"{first.url}/v1/workspaces/acme", headers=headers, timeout=30
            ) as via_first,
            httpx.AsyncClient(
                base_url=f"{second.url}/v1/workspaces/acme", headers=headers, timeout=30
            ) as via_second,
        ):
            every_minute = (
                await via_first.post(
                    "/schedules",
                    json={"name": "minutely", "cron": "* * * * *", "job": {"type": "m"}},
                )
            ).json()
            every_other = (
                await via_second.post(
                    "/schedules",
                    json={"name": "even", "cron": "*/2 * * * *", "job": {"type": "e"}},
                )
            ).json()

            async def moved_past(tick: datetime) -> bool:
                for name in ("minutely", "even"):
                    found = (await via_second.get(f"/schedules/{name}")).json()
                    if datetime.fromisoformat(found["next_run_at"]) <= tick:
                        return False
                return True

            for minute in range(1, TICKS + 1):
                tick = START.replace(second=0) + timedelta(minutes=minute)
                clock.set(tick + timedelta(milliseconds=1))
                for server in servers:
                    server.runtime.scheduler.wake()
                await eventually(lambda tick=tick: moved_past(tick), what=f"tick {tick}")

            async def all_made() -> bool:
                runs = [
                    (await via_first.get(f"/schedules/{name}/runs", params={"limit": 100})).json()[
                        "data"
                    ]
                    for name in ("minutely", "even")
                ]
                return [len(r) for r in runs] == [TICKS, TICKS // 2] and all(
                    run["job_status"] is not None for r in runs for run in r
                )

            await eventually(all_made, what="every tick's job made and recorded")
            # Both schedulers look once more at the end: nothing more is made.
            for server in servers:
                await server.runtime.scheduler.run_once()

            for schedule, job_type, step in ((every_minute, "m", 1), (every_other, "e", 2)):
                jobs: list[dict[str, Any]] = (
                    await via_first.get("/jobs", params={"type": job_type, "limit": 200})
                ).json()["data"]
                expected = [
                    f"schedule:{schedule['id']}:2026-12-05T10:{m:02}:00Z"
                    for m in range(step, TICKS + 1, step)
                ]
                assert sorted(job["idempotency_key"] for job in jobs) == expected
                for job in jobs:
                    events = (await via_first.get(f"/jobs/{job['id']}/events")).json()["data"]
                    created = [e for e in events if e["type"] == "job.created"]
                    assert len(created) == 1
                    assert created[0]["payload"]["schedule_id"] == schedule["id"]
                    assert job["idempotency_key"].endswith(created[0]["payload"]["tick"])
                runs = (
                    await via_second.get(f"/schedules/{schedule['id']}/runs", params={"limit": 100})
                ).json()["data"]
                assert {run["outcome"] for run in runs} == {"fired"}
                assert sorted(run["job_id"] for run in runs) == sorted(job["id"] for job in jobs)
