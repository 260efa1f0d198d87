"""`conveyor schedules` against a running server, as a user types it."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.cli.helpers import conveyor
from tests.support.server import RunningServer


async def test_schedule_commands_against_a_running_server(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["client"]}
    ran = await conveyor(
        "schedules",
        "create",
        "nightly",
        "--cron",
        "30 2 * * *",
        "--timezone",
        "Europe/Berlin",
        "--type",
        "report.build",
        "--payload",
        '{"kind": "daily"}',
        "--priority",
        "3",
        "--overlap",
        "skip",
        "--json",
        env=env,
    )
    assert ran.code == 0, ran.output
    created = json.loads(ran.out)
    assert (created["cron"], created["timezone"], created["overlap"]) == (
        "30 2 * * *",
        "Europe/Berlin",
        "skip",
    )
    assert created["job"] == {
        "type": "report.build",
        "payload": {"kind": "daily"},
        "priority": 3,
        "max_attempts": 1,
        "timeout_seconds": None,
        "concurrency_key": None,
    }

    ran = await conveyor("schedules", "list", env=env)
    assert ran.code == 0, ran.output
    assert "nightly" in ran.out
    assert "Europe/Berlin" in ran.out
    assert ran.out.rstrip().endswith("1 schedule")

    ran = await conveyor("schedules", "pause", "nightly", env=env)
    assert "is paused" in ran.out
    ran = await conveyor("schedules", "list", env=env)
    assert "paused" in ran.out
    ran = await conveyor("schedules", "resume", created["id"], env=env)
    assert ran.code == 0, ran.output
    assert "resumed; next run" in ran.out

    ran = await conveyor("schedules", "trigger", "nightly", "-q", env=env)
    assert ran.code == 0, ran.output
    job_id = ran.out.strip()
    ran = await conveyor("jobs", "show", job_id, "--json", env=env)
    job = json.loads(ran.out)
    assert job["idempotency_key"].startswith(f"schedule:{created['id']}:manual:")

    ran = await conveyor("schedules", "show", "nightly", env=env)
    assert ran.code == 0, ran.output
    assert "30 2 * * *  (Europe/Berlin)" in ran.out
    assert "(triggered)" in ran.out
    assert job_id in ran.out

    ran = await conveyor(
        "schedules", "create", "hourly", "--cron", "@hourly", "--type", "report.build",
        "--timeout", "90", "--concurrency-key", "acme-reports", env=env,
    )  # fmt: skip
    assert ran.code == 0, ran.output
    ran = await conveyor("schedules", "show", "hourly", env=env)
    assert ran.code == 0, ran.output
    lines = [line.split() for line in ran.out.splitlines()]
    assert ["timeout", "90", "s"] in lines, ran.out
    assert ["concurrency", "key", "acme-reports"] in lines, ran.out

    ran = await conveyor("schedules", "delete", "nightly", env=env)
    assert ran.code == 0, ran.output
    ran = await conveyor("schedules", "show", "nightly", env=env)
    assert ran.code == 2
    assert "not found" in ran.err


async def test_an_invalid_schedule_is_refused_with_the_field_named(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor(
        "schedules", "create", "bad", "--cron", "61 * * * *", "--type", "t", env=env
    )
    assert ran.code == 2
    assert "cron" in ran.err
    ran = await conveyor(
        "schedules",
        "create",
        "bad",
        "--cron",
        "@daily",
        "--timezone",
        "Mars/Base",
        "--type",
        "t",
        env=env,
    )
    assert ran.code == 2
    assert "timezone" in ran.err
    worker = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["worker"]}
    ran = await conveyor("schedules", "create", "w", "--cron", "@daily", "--type", "t", env=worker)
    assert ran.code == 1
    assert "may not manage schedules" in ran.err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_trigger_with_a_key_used_before_names_the_job_it_made(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor("schedules", "create", "n", "--cron", "@daily", "--type", "t", env=env)
    assert ran.code == 0, ran.output
    trigger = ("schedules", "trigger", "n", "--idempotency-key", "k1")
    first = await conveyor(*trigger, env=env)
    assert first.out.startswith("created job "), first.output
    job_id = first.out.split()[2]
    again = await conveyor(*trigger, env=env)
    assert again.code == 0, again.output
    assert again.out.startswith(f"job {job_id} already exists for idempotency key k1 "), again.out
    answered = json.loads((await conveyor(*trigger, "--json", env=env)).out)
    assert (answered["id"], answered["created"]) == (job_id, False)
    assert (await conveyor(*trigger, "-q", env=env)).out == f"{job_id}\n"


async def test_a_name_that_reads_as_another_schedules_id_is_refused(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    create = ("schedules", "create")
    ran = await conveyor(*create, "first", "--cron", "@daily", "--type", "t", "-q", env=env)
    first_id = ran.out.strip()
    ran = await conveyor(*create, first_id, "--cron", "@hourly", "--type", "u", env=env)
    assert ran.code == 2
    assert "name: must not read as an id" in ran.err
    ran = await conveyor("schedules", "show", first_id, "--json", env=env)
    assert ran.code == 0, ran.output
    assert (json.loads(ran.out)["name"], json.loads(ran.out)["cron"]) == ("first", "@daily")
    ran = await conveyor("schedules", "list", "--json", env=env)
    assert [schedule["name"] for schedule in json.loads(ran.out)] == ["first"]


async def test_list_shows_every_schedule_however_many_pages_they_take(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    names = ["echo", "alpha", "delta", "bravo", "charlie"]
    for name in names:
        schedule = {"name": name, "cron": "@daily", "job": {"type": "t"}}
        assert (await client.post("/schedules", json=schedule)).status_code == 201
    ran = await conveyor("schedules", "list", "--page-size", "2", env=env)
    assert ran.code == 0, ran.output
    listed = [line.split()[0] for line in ran.out.splitlines()[1:-1]]
    assert listed == sorted(names), ran.out
    assert ran.out.rstrip().endswith("5 schedules")
    ran = await conveyor("schedules", "list", "--page-size", "2", "--json", env=env)
    assert [schedule["name"] for schedule in json.loads(ran.out)] == sorted(names)


def run_job_ids(out: str) -> list[str]:
    """The job ids of a runs table, top to bottom."""
    return re.findall(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b", out)


def next_cursor_in(out: str) -> str | None:
    """The cursor a page's `next: --cursor C (with the same options)` line names."""
    found = re.search(r"^next: --cursor (\S+) \(with the same options\)$", out, re.MULTILINE)
    return None if found is None else found.group(1)


async def test_runs_pages_a_schedules_history_by_cursor(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["client"]}
    await client.post(
        "/schedules",
        json={"name": "minutely", "cron": "* * * * *", "paused": True, "job": {"type": "t"}},
    )
    made = [(await client.post("/schedules/minutely/trigger")).json()["id"] for _ in range(7)]
    newest_first = made[::-1]

    first = await conveyor("schedules", "runs", "minutely", "--limit", "3", env=env)
    assert first.code == 0, first.output
    assert run_job_ids(first.out) == newest_first[:3]
    assert "3 runs, newest first" in first.out
    cursor = next_cursor_in(first.out)
    assert cursor is not None, first.out

    await client.post("/schedules/minutely/trigger")  # recorded between pages
    second = await conveyor(
        "schedules", "runs", "minutely", "--limit", "3", "--cursor", cursor, env=env
    )
    assert second.code == 0, second.output
    assert run_job_ids(second.out) == newest_first[3:6]
    assert "3 runs, by cursor" in second.out
    cursor = next_cursor_in(second.out)
    assert cursor is not None, second.out
    last = await conveyor(
        "schedules", "runs", "minutely", "--limit", "3", "--cursor", cursor, "--json", env=env
    )
    assert last.code == 0, last.output
    answer = json.loads(last.out)
    assert [run["job_id"] for run in answer["data"]] == newest_first[6:]
    assert answer["meta"] == {"limit": 3, "next_cursor": None}

    text = await conveyor(
        "schedules", "runs", "minutely", "--limit", "3", "--cursor", cursor, env=env
    )
    assert next_cursor_in(text.out) is None
    assert "next:" not in text.out

    shown = await conveyor("schedules", "show", "minutely", "--runs", "2", env=env)
    assert shown.code == 0, shown.output
    assert "older runs: conveyor schedules runs minutely --cursor " in shown.out

    refused = await conveyor(
        "schedules", "runs", "minutely", "--cursor", "bm90LWEtY3Vyc29y", env=env
    )
    assert refused.code == 2, refused.output
    assert "cursor" in refused.err
