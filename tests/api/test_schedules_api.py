"""The schedules API over real HTTP, on both databases: the resource, its errors (422
naming the field, 409, 404), trigger and history, and the server's own scheduler firing
ticks on a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from conveyor.store import Store
from tests.support.clock import FakeClock
from tests.support.server import RunningServer
from tests.worker.conftest import eventually

NOW = datetime(2026, 12, 5, 10, 2, tzinfo=UTC)
NIGHTLY = {
    "name": "nightly-report",
    "cron": "30 2 * * *",
    "timezone": "Europe/Berlin",
    "job": {"type": "report.build", "payload": {"kind": "daily"}, "priority": 3},
}


@pytest.fixture
def clock(server: RunningServer) -> FakeClock:
    """The server's scheduler (and its schedule service) read this clock from now on."""
    fake = FakeClock(NOW)
    server.runtime.schedules.clock = fake
    server.runtime.scheduler.wake()
    return fake


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


async def test_a_schedule_is_created_read_listed_changed_and_deleted(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    created = await client.post("/schedules", json=NIGHTLY)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "nightly-report"
    assert body["timezone"] == "Europe/Berlin"
    assert body["job"] == {
        "type": "report.build",
        "payload": {"kind": "daily"},
        "priority": 3,
        "max_attempts": 1,
        "timeout_seconds": None,
        "concurrency_key": None,
    }
    assert (body["overlap"], body["catch_up"], body["paused"]) == ("allow", "none", False)
    # 02:30 in Berlin (CET, UTC+1) is 01:30Z; the upcoming ticks follow day by day.
    assert body["next_run_at"] == "2026-12-06T01:30:00+00:00"
    assert body["upcoming"][:2] == ["2026-12-06T01:30:00+00:00", "2026-12-07T01:30:00+00:00"]
    assert len(body["upcoming"]) == 5
    assert (body["last_run_at"], body["last_job_id"], body["version"]) == (None, None, 1)

    by_id = await client.get(f"/schedules/{body['id']}")
    by_name = await client.get("/schedules/nightly-report")
    assert by_id.json() == by_name.json() == body
    listed = (await client.get("/schedules")).json()["data"]
    assert [s["name"] for s in listed] == ["nightly-report"]

    paused = await client.patch("/schedules/nightly-report", json={"paused": True})
    assert paused.status_code == 200
    assert (paused.json()["paused"], paused.json()["next_run_at"], paused.json()["upcoming"]) == (
        True,
        None,
        [],
    )
    changed = await client.patch(
        f"/schedules/{body['id']}",
        json={
            "paused": False,
            "cron": "@hourly",
            "timezone": "UTC",
            "job": {"priority": 1, "timeout_seconds": 30},
            "overlap": "skip",
            "catch_up": "latest",
        },
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["next_run_at"] == "2026-12-05T11:00:00+00:00"
    assert after["job"]["priority"] == 1
    assert after["job"]["timeout_seconds"] == 30
    assert after["job"]["payload"] == {"kind": "daily"}  # what the change left out stays
    assert (after["overlap"], after["catch_up"], after["version"]) == ("skip", "latest", 3)
    stale = await client.patch(
        "/schedules/nightly-report", json={"paused": True, "expected_version": 2}
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == 3

    deleted = await client.delete("/schedules/nightly-report")
    assert deleted.status_code == 204
    gone = await client.get(f"/schedules/{body['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert (await client.delete(f"/schedules/{body['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * *"}, "cron"),
        ({"cron": "@reboot"}, "cron"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"timezone": "../../../etc/passwd"}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"name": "has space"}, "name"),
        ({"job": {"type": "Not.A.Type"}}, "job.type"),
        ({"job": {"type": "t", "priority": 0}}, "job.priority"),
        ({"job": {"type": "t", "timeout_seconds": -1}}, "job.timeout_seconds"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"catch_up": "all"}, "catch_up"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/schedules", json={**NIGHTLY, **change})
    assert response.status_code == 422, response.text
    assert field in problem_fields(response)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"job": {"priority": 11}}, "job.priority"),
        ({"job": {"type": None}}, "job.type"),
    ],
)
async def test_an_invalid_change_is_a_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    created = (await client.post("/schedules", json=NIGHTLY)).json()
    response = await client.patch("/schedules/nightly-report", json=change)
    assert response.status_code == 422, response.text
    assert field in problem_fields(response)
    assert (await client.get("/schedules/nightly-report")).json() == created


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"job": {"type": "t", "priority": "3"}}, "job.priority"),
        ({"job": {"type": "t", "priority": True}}, "job.priority"),
        ({"job": {"type": "t", "max_attempts": "2"}}, "job.max_attempts"),
        ({"job": {"type": "t", "timeout_seconds": "30"}}, "job.timeout_seconds"),
        ({"job": {"type": "t", "timeout_seconds": True}}, "job.timeout_seconds"),
        ({"paused": "yes"}, "paused"),
        ({"paused": 1}, "paused"),
    ],
)
async def test_a_value_of_the_wrong_json_type_is_refused_as_on_jobs(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/schedules", json={**NIGHTLY, **change})
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]
    assert (await client.get("/schedules")).json()["data"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"paused": "off"}, "paused"),
        ({"paused": 0}, "paused"),
        ({"job": {"priority": "3"}}, "job.priority"),
        ({"job": {"max_attempts": False}}, "job.max_attempts"),
        ({"job": {"timeout_seconds": "30"}}, "job.timeout_seconds"),
        ({"paused": True, "expected_version": "1"}, "expected_version"),
    ],
)
async def test_a_change_of_the_wrong_json_type_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    created = (await client.post("/schedules", json={**NIGHTLY, "paused": True})).json()
    response = await client.patch("/schedules/nightly-report", json=change)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]
    assert (await client.get("/schedules/nightly-report")).json() == created


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": None}, "cron"),
        ({"timezone": None}, "timezone"),
        ({"paused": None}, "paused"),
        ({"overlap": None}, "overlap"),
        ({"catch_up": None}, "catch_up"),
        ({"job": None}, "job"),
        ({"job": {"priority": None}}, "job.priority"),
        ({"job": {"max_attempts": None}}, "job.max_attempts"),
    ],
)
async def test_a_null_for_a_field_that_cannot_be_null_is_refused(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    created = (await client.post("/schedules", json=NIGHTLY)).json()
    response = await client.patch("/schedules/nightly-report", json=change)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [field]
    assert "must not be null" in response.json()["detail"]
    assert (await client.get("/schedules/nightly-report")).json() == created


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"expected_version": 1},
        {"expected_version": None},
        {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "paused": False},
        {"overlap": "allow", "catch_up": "none"},
        {"job": {}},
        {"job": {"type": "report.build", "priority": 3, "payload": {"kind": "daily"}}},
        {"job": {"timeout_seconds": None, "concurrency_key": None}},
    ],
)
async def test_a_change_that_changes_nothing_answers_the_schedule_as_it_is(
    client: httpx.AsyncClient, clock: FakeClock, change: dict[str, Any]
) -> None:
    created = (await client.post("/schedules", json=NIGHTLY)).json()
    response = await client.patch("/schedules/nightly-report", json=change)
    assert response.status_code == 200, response.text
    assert response.json() == created  # version 1 and updated_at as they were
    assert (await client.get("/schedules/nightly-report")).json() == created
    # So whoever holds version 1 may still change it.
    changed = await client.patch(
        "/schedules/nightly-report", json={"paused": True, "expected_version": 1}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2


def uuid_spellings(schedule_id: str) -> list[str]:
    """The ways a route reads `schedule_id` as an id (and would never reach a schedule of
    that name): as written, without dashes, in capitals."""
    return [schedule_id, schedule_id.replace("-", ""), schedule_id.upper()]


async def test_a_name_that_reads_as_an_id_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
) -> None:
    first = (await client.post("/schedules", json=NIGHTLY)).json()
    for name in [*uuid_spellings(first["id"]), "00000000-0000-0000-0000-000000000000"]:
        response = await client.post("/schedules", json={**NIGHTLY, "name": name})
        assert response.status_code == 422, response.text
        assert problem_fields(response) == ["name"]
        assert "id" in response.json()["errors"][0]["message"]
    listed = (await client.get("/schedules")).json()["data"]
    assert [schedule["id"] for schedule in listed] == [first["id"]]
    # The id reaches the schedule it names, unchanged.
    assert (await client.get(f"/schedules/{first['id']}")).json() == first


async def test_a_name_is_unique_in_its_workspace_and_invisible_to_others(
    server: RunningServer, client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    first = (await client.post("/schedules", json=NIGHTLY)).json()
    again = await client.post("/schedules", json=NIGHTLY)
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/already-exists"
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/other",
        headers={"Authorization": f"Bearer {keys['other']}"},
    ) as other:
        assert (await other.get("/schedules")).json()["data"] == []
        assert (await other.get(f"/schedules/{first['id']}")).status_code == 404
        assert (await other.post("/schedules", json=NIGHTLY)).status_code == 201


async def test_trigger_makes_a_job_at_once_and_the_history_shows_it(
    client: httpx.AsyncClient,
) -> None:
    schedule = (await client.post("/schedules", json={**NIGHTLY, "paused": True})).json()
    triggered = await client.post("/schedules/nightly-report/trigger")
    assert triggered.status_code == 201, triggered.text
    job = triggered.json()
    assert (job["type"], job["payload"], job["priority"]) == ("report.build", {"kind": "daily"}, 3)
    assert job["idempotency_key"].startswith(f"schedule:{schedule['id']}:manual:")
    keyed = await client.post(
        f"/schedules/{schedule['id']}/trigger", json={"idempotency_key": "deploy-42"}
    )
    repeated = await client.post(
        f"/schedules/{schedule['id']}/trigger", json={"idempotency_key": "deploy-42"}
    )
    assert (keyed.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["id"] == keyed.json()["id"]
    assert keyed.json()["idempotency_key"] == f"schedule:{schedule['id']}:manual:deploy-42"
    await client.post(f"/jobs/{job['id']}/cancel")
    runs = (await client.get("/schedules/nightly-report/runs")).json()
    assert runs["schedule_id"] == schedule["id"]
    assert [(r["outcome"], r["job_id"], r["job_status"], r["tick"]) for r in runs["data"]] == [
        ("triggered", keyed.json()["id"], "QUEUED", None),
        ("triggered", job["id"], "CANCELLED", None),
    ]
    detail = (await client.get(f"/jobs/{job['id']}")).json()
    assert detail["events"][0]["payload"]["schedule_id"] == schedule["id"]
    assert detail["events"][0]["payload"]["manual"] is True
    after = (await client.get("/schedules/nightly-report")).json()
    assert after["last_job_id"] == keyed.json()["id"]
    assert after["paused"] is True


async def test_the_servers_scheduler_fires_each_tick_when_its_clock_comes(
    server: RunningServer, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    schedule = (
        await client.post(
            "/schedules", json={"name": "five", "cron": "*/5 * * * *", "job": {"type": "tick"}}
        )
    ).json()
    assert schedule["next_run_at"] == "2026-12-05T10:05:00+00:00"
    fired: list[dict[str, Any]] = []

    async def jobs_made() -> list[dict[str, Any]]:
        page = (await client.get("/jobs", params={"type": "tick"})).json()["data"]
        return sorted(page, key=lambda job: job["idempotency_key"])

    for minute in ("05", "10"):
        clock.set(datetime.fromisoformat(f"2026-12-05T10:{minute}:00.002+00:00"))
        server.runtime.scheduler.wake()

        async def made(count: int = len(fired) + 1) -> bool:
            nonlocal fired
            fired = await jobs_made()
            return len(fired) == count

        await eventually(made, what=f"the 10:{minute} tick's job")
    assert [job["idempotency_key"] for job in fired] == [
        f"schedule:{schedule['id']}:2026-12-05T10:05:00Z",
        f"schedule:{schedule['id']}:2026-12-05T10:10:00Z",
    ]
    created = (await client.get(f"/jobs/{fired[0]['id']}")).json()["events"][0]
    assert created["type"] == "job.created"
    assert created["payload"]["schedule_id"] == schedule["id"]
    assert created["payload"]["schedule"] == "five"
    assert created["payload"]["tick"] == "2026-12-05T10:05:00Z"
    after = (await client.get("/schedules/five")).json()
    assert after["next_run_at"] == "2026-12-05T10:15:00+00:00"
    assert after["last_run_at"] == "2026-12-05T10:10:00+00:00"
    assert after["last_job_id"] == fired[1]["id"]


async def test_a_schedules_job_timeout_is_written_alike_in_every_answer(
    client: httpx.AsyncClient,
) -> None:
    """30 seconds is `30.0` as created, read, listed and changed (SQLite's insert once
    answered `30`)."""
    job = {**NIGHTLY["job"], "timeout_seconds": 30}
    created = await client.post("/schedules", json={**NIGHTLY, "job": job})
    assert created.status_code == 201
    read = await client.get("/schedules/nightly-report")
    [listed] = (await client.get("/schedules")).json()["data"]
    changed = await client.patch("/schedules/nightly-report", json={"job": {"priority": 1}})
    for body in (created.json(), read.json(), listed, changed.json()):
        timeout = body["job"]["timeout_seconds"]
        assert (type(timeout), timeout) == (float, 30.0)


def names_in(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [schedule["name"] for schedule in response.json()["data"]]


async def test_the_list_pages_by_name_with_a_cursor_as_the_job_list_does(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    for name in ["echo", "alpha", "charlie", "bravo", "delta"]:
        assert (await client.post("/schedules", json={**NIGHTLY, "name": name})).status_code == 201
    everything = await client.get("/schedules")
    assert names_in(everything) == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert everything.json()["meta"] == {
        "total": 5,
        "page": 1,
        "limit": 500,
        "total_pages": 1,
        "total_is_estimate": False,
        "next_cursor": None,
    }

    first = await client.get("/schedules", params={"limit": 2})
    assert names_in(first) == ["alpha", "bravo"]
    meta = first.json()["meta"]
    assert (meta["total"], meta["page"], meta["limit"], meta["total_pages"]) == (5, 1, 2, 3)
    # Created and deleted between pages: the next page starts after "bravo" all the same.
    await client.post("/schedules", json={**NIGHTLY, "name": "bravo-2"})
    await client.delete("/schedules/alpha")
    second = await client.get("/schedules", params={"limit": 2, "cursor": meta["next_cursor"]})
    assert names_in(second) == ["bravo-2", "charlie"]
    assert second.json()["meta"]["page"] is None
    third = await client.get(
        "/schedules", params={"limit": 2, "cursor": second.json()["meta"]["next_cursor"]}
    )
    assert names_in(third) == ["delta", "echo"]
    assert third.json()["meta"]["next_cursor"] is None  # full, and nothing follows

    by_number = await client.get("/schedules", params={"limit": 2, "page": 2})
    assert names_in(by_number) == ["charlie", "delta"]
    assert by_number.json()["meta"]["page"] == 2


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "MTo0MjoxMjM0"},  # a job list's kind of cursor
        {"cursor": "c2NoZWR1bGU6YWxwaGE", "page": 2},
        {"cursor": "not a cursor"},
        {"limit": 0},
        {"limit": 501},
    ],
)
async def test_a_page_asked_for_wrongly_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    response = await client.get("/schedules", params=params)
    assert response.status_code == 422, response.text
    assert problem_fields(response) == [next(iter(params))]


async def trigger_runs(client: httpx.AsyncClient, schedule: str, count: int) -> list[str]:
    """`count` runs of `schedule` at once (triggers, not ticks): their jobs' ids, oldest
    first."""
    made = []
    for _ in range(count):
        triggered = await client.post(f"/schedules/{schedule}/trigger")
        assert triggered.status_code == 201, triggered.text
        made.append(triggered.json()["id"])
    return made


def run_jobs(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["job_id"] for run in response.json()["data"]]


async def test_the_runs_page_newest_first_by_cursor_and_new_runs_never_shift_a_page(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/schedules", json={**NIGHTLY, "paused": True})
    made = await trigger_runs(client, "nightly-report", 7)
    newest_first = made[::-1]

    first = await client.get("/schedules/nightly-report/runs", params={"limit": 3})
    assert run_jobs(first) == newest_first[:3]
    assert first.json()["meta"]["limit"] == 3
    assert first.json()["meta"]["next_cursor"] is not None
    # A run recorded between pages: the next page goes on after the last run shown.
    [later] = await trigger_runs(client, "nightly-report", 1)
    second = await client.get(
        "/schedules/nightly-report/runs",
        params={"limit": 3, "cursor": first.json()["meta"]["next_cursor"]},
    )
    assert run_jobs(second) == newest_first[3:6]
    third = await client.get(
        "/schedules/nightly-report/runs",
        params={"limit": 3, "cursor": second.json()["meta"]["next_cursor"]},
    )
    assert run_jobs(third) == newest_first[6:]
    assert third.json()["meta"] == {"limit": 3, "next_cursor": None}

    # A page that is full and has nothing after it says so; the first page now starts
    # with the run recorded meanwhile.
    everything = await client.get("/schedules/nightly-report/runs", params={"limit": 8})
    assert run_jobs(everything) == [later, *newest_first]
    assert everything.json()["meta"]["next_cursor"] is None
    default = await client.get("/schedules/nightly-report/runs")
    assert default.json()["meta"] == {"limit": 50, "next_cursor": None}


async def test_a_runs_cursor_outlives_its_run_and_goes_on_by_the_schedules_id_or_name(
    client: httpx.AsyncClient, store: Store
) -> None:
    schedule = (await client.post("/schedules", json={**NIGHTLY, "paused": True})).json()
    made = await trigger_runs(client, "nightly-report", 4)
    first = await client.get(f"/schedules/{schedule['id']}/runs", params={"limit": 2})
    cursor = first.json()["meta"]["next_cursor"]
    assert run_jobs(first) == [made[3], made[2]]
    # The cursor's run is deleted (as the pruner would): its place stays.
    async with store.database.write() as connection:
        await connection.execute(
            "DELETE FROM schedule_runs WHERE id = :id", {"id": first.json()["data"][1]["id"]}
        )
    rest = await client.get("/schedules/nightly-report/runs", params={"limit": 2, "cursor": cursor})
    assert run_jobs(rest) == [made[1], made[0]]


@pytest.mark.parametrize(
    "cursor",
    [
        "bm90LWEtY3Vyc29y",  # not one of ours
        "MTo0MjoxMjM0",  # a job list's kind of cursor
        "c2NoZWR1bGU6YWxwaGE",  # the schedule list's ("schedule:alpha")
        "not a cursor",
        "cnVuOjEyMzQ6NQ",  # "run:1234:5": a run's kind with no schedule's id
    ],
)
async def test_a_runs_cursor_that_is_not_one_of_this_list_is_a_422_naming_cursor(
    client: httpx.AsyncClient, cursor: str
) -> None:
    await client.post("/schedules", json={**NIGHTLY, "paused": True})
    response = await client.get("/schedules/nightly-report/runs", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert problem_fields(response) == ["cursor"]


async def test_another_schedules_runs_cursor_is_a_422_and_paging_by_number_is_not_offered(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/schedules", json={**NIGHTLY, "paused": True})
    await client.post("/schedules", json={**NIGHTLY, "name": "other", "paused": True})
    await trigger_runs(client, "other", 2)
    other = await client.get("/schedules/other/runs", params={"limit": 1})
    cursor = other.json()["meta"]["next_cursor"]
    assert cursor is not None
    response = await client.get("/schedules/nightly-report/runs", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert problem_fields(response) == ["cursor"]
    # The jobs list and the schedules list refuse it too.
    assert problem_fields(await client.get("/jobs", params={"cursor": cursor})) == ["cursor"]
    assert problem_fields(await client.get("/schedules", params={"cursor": cursor})) == ["cursor"]
    by_number = await client.get("/schedules/other/runs", params={"page": 2})
    assert problem_fields(by_number) == ["page"]
    for limit in (0, 201):
        refused = await client.get("/schedules/other/runs", params={"limit": limit})
        assert problem_fields(refused) == ["limit"]
