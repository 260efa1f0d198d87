"""`conveyor limits …` against a running server, and what `jobs show` says of a job a
limit holds back: as a user types them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from conveyor.cli.main import main
from conveyor.client import Client
from tests.cli.helpers import conveyor
from tests.support.server import RunningServer


def limit_row(output: str, name: str) -> list[str]:
    """The cells of `limits list`'s row for a limit (split on runs of spaces)."""
    line = next((line for line in output.splitlines() if line.startswith(name + " ")), None)
    assert line is not None, f"no row for {name!r} in:\n{output}"
    return line[len(name) :].split()


def fact(output: str, label: str) -> str:
    """What `limits show` (or `jobs show`) prints after a label."""
    line = next((line for line in output.splitlines() if line.startswith(label + " ")), None)
    assert line is not None, f"no {label!r} line in:\n{output}"
    return line[len(label) :].strip()


async def test_set_changes_only_what_is_given_then_pause_resume_and_delete(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor("limits", "list", env=env)
    assert ran.code == 0, ran.output
    assert "no limits" in ran.out

    ran = await conveyor("limits", "set", "openai", "--max-running", "2", env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "max running") == "2"
    assert fact(ran.out, "rate") == "no cap"

    ran = await conveyor("limits", "set", "openai", "--rate", "10/60", env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "max running") == "2", "set keeps what it was not given"
    assert fact(ran.out, "rate") == "10 per 60 s"

    ran = await conveyor("limits", "pause", "openai", env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "paused") == "yes"
    ran = await conveyor("limits", "--json", "show", "openai", env=env)
    shown = json.loads(ran.out)
    assert (shown["max_running"], shown["rate"], shown["paused"]) == (
        2,
        {"count": 10, "per_seconds": 60.0},
        True,
    )
    assert shown["waiting_because"] == "paused"

    ran = await conveyor("limits", "resume", "openai", env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "paused") == "no"
    assert fact(ran.out, "max running") == "2", "resume keeps the caps"

    ran = await conveyor("limits", "set", "openai", "--max-running", "none", "--pause", env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "max running") == "no cap"
    assert fact(ran.out, "rate") == "10 per 60 s"
    assert fact(ran.out, "paused") == "yes"
    ran = await conveyor("limits", "set", "openai", "--rate", "none", "--resume", env=env)
    assert (fact(ran.out, "rate"), fact(ran.out, "paused")) == ("no cap", "no"), ran.out

    # Any printable name: a job type's limit, and one with a slash and a space.
    ran = await conveyor("limits", "pause", "type:email.send", env=env)
    assert ran.code == 0, ran.output
    ran = await conveyor("limits", "set", "customer/42 eu", "--max-running", "3", env=env)
    assert ran.code == 0, ran.output
    ran = await conveyor("limits", "show", "customer/42 eu", "--json", env=env)
    assert json.loads(ran.out)["name"] == "customer/42 eu"
    ran = await conveyor("limits", "list", env=env)
    assert limit_row(ran.out, "type:email.send") == ["0/-", "0", "-", "-", "yes", "paused"]
    assert limit_row(ran.out, "customer/42 eu") == ["0/3", "0", "-", "-", "no", "-"]

    ran = await conveyor("limits", "delete", "customer/42 eu", env=env)
    assert ran.code == 0, ran.output
    ran = await conveyor("limits", "show", "customer/42 eu", env=env)
    assert ran.code == 2, ran.output
    assert "limit" in ran.err
    ran = await conveyor("limits", "resume", "never-made", env=env)
    assert ran.code == 2, "resume does not make a limit: there is nothing to resume"
    ran = await conveyor("limits", "delete", "never-made", env=env)
    assert ran.code == 2, ran.output


async def test_bad_values_and_a_key_that_may_not_manage_limits(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    for option, value in (
        ("--rate", "10"),
        ("--rate", "0/60"),
        ("--rate", "5/0"),
        ("--rate", "5/inf"),
        ("--max-running", "-1"),
        ("--max-running", "lots"),
    ):
        ran = await conveyor("limits", "set", "openai", option, value, env=env)
        assert ran.code == 2, f"{option} {value}: {ran.output}"
        assert option in ran.err, ran.err
    ran = await conveyor("limits", "list", env=env)
    assert "no limits" in ran.out, "nothing was written"

    client = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["client"]}
    ran = await conveyor("limits", "set", "openai", "--max-running", "1", env=client)
    assert ran.code == 1, ran.output
    assert "a client key may not manage limits" in ran.err, ran.err
    ran = await conveyor("limits", "list", env=client)
    assert ran.code == 0, "every key that reads the workspace reads its limits"


async def test_jobs_show_says_which_limit_holds_a_job_back(
    server: RunningServer, keys: dict[str, str], client: httpx.AsyncClient
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor("limits", "set", "openai", "--max-running", "1", env=env)
    assert ran.code == 0, ran.output
    ids = []
    for _ in range(2):
        ran = await conveyor(
            "jobs", "create", "-q", "--type", "ai.chat", "--concurrency-key", "openai", env=env
        )
        assert ran.code == 0, ran.output
        ids.append(ran.out.strip())
    claimed = await client.post(
        "/claims",
        json={"worker_id": "w", "limit": 2, "lease_seconds": 600},
        headers={"Authorization": f"Bearer {keys['worker']}"},
    )
    assert [job["id"] for job in claimed.json()["data"]] == ids[:1], claimed.text

    ran = await conveyor("jobs", "show", ids[1], env=env)
    assert ran.code == 0, ran.output
    assert fact(ran.out, "concurrency key") == "openai"
    assert "waiting for limit openai: 1/1 running" in ran.out
    ran = await conveyor("jobs", "show", ids[0], env=env)
    assert "waiting for" not in ran.out, "a running job waits for nothing"

    ran = await conveyor("limits", "list", env=env)
    assert limit_row(ran.out, "openai") == ["1/1", "1", "-", "-", "no", "1/1", "running"]
    ran = await conveyor("limits", "show", "openai", env=env)
    assert fact(ran.out, "waiting") == "none may start: 1/1 running"

    ran = await conveyor("limits", "pause", "openai", env=env)
    ran = await conveyor("jobs", "show", ids[1], env=env)
    assert "waiting for limit openai: paused" in ran.out, ran.out

    # A rate: one start an hour. The first job starts; the second waits for the window.
    ran = await conveyor("limits", "set", "type:ai.draw", "--rate", "1/3600", env=env)
    assert ran.code == 0, ran.output
    drawings = []
    for _ in range(2):
        ran = await conveyor("jobs", "create", "-q", "--type", "ai.draw", env=env)
        drawings.append(ran.out.strip())
    claimed = await client.post(
        "/claims",
        json={"worker_id": "w", "limit": 2, "lease_seconds": 600, "types": ["ai.draw"]},
        headers={"Authorization": f"Bearer {keys['worker']}"},
    )
    assert len(claimed.json()["data"]) == 1, claimed.text
    waiting = next(job for job in drawings if job != claimed.json()["data"][0]["id"])
    ran = await conveyor("jobs", "show", waiting, env=env)
    assert "waiting for limit type:ai.draw: rate: 1 per 3600 s" in ran.out, ran.out
    assert fact(ran.out, "concurrency key") == "-"


async def test_an_instance_admin_names_the_workspace(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["instance_admin"]}
    ran = await conveyor("limits", "list", env=env)
    assert ran.code == 1, ran.output
    assert "instance key" in ran.err, ran.err
    assert "--workspace" in ran.err, ran.err
    assert "Traceback" not in ran.output
    ran = await conveyor(
        "limits", "set", "openai", "--max-running", "4", "--workspace", "other", env=env
    )
    assert ran.code == 0, ran.output
    ran = await conveyor("limits", "--workspace", "other", "list", env=env)
    assert limit_row(ran.out, "openai")[0] == "0/4"
    ran = await conveyor("limits", "list", "--workspace", "acme", env=env)
    assert "no limits" in ran.out, "the limit is the other workspace's"


async def test_set_reads_again_when_another_change_lands_between_its_read_and_put(
    server: RunningServer, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another operator pauses the limit after `limits set --rate` read it: the put at the
    version read is refused (409), and set reads the limit again and puts its change on
    top, so the pause is kept. Run in this process (click's runner) to land the pause
    exactly there (in the runner's thread: the server shares this event loop); the server
    and both clients are real."""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {keys['admin']}"}
    ) as http:
        made = await http.put("/v1/workspaces/acme/limits/openai", json={"max_running": 2})
        assert made.status_code == 200, made.text
    reads: list[int] = []
    read = Client.get_limit

    def read_then_pause_elsewhere(client: Client, name: str) -> dict[str, Any]:
        found = read(client, name)
        reads.append(found["version"])
        if len(reads) == 1:
            with Client(server.url, keys["admin"]) as other:
                other.put_limit(name, max_running=2, paused=True)
        return found

    monkeypatch.setattr(Client, "get_limit", read_then_pause_elsewhere)
    ran = await asyncio.to_thread(
        CliRunner().invoke, main, ["limits", "--json", "set", "openai", "--rate", "10/60"], env=env
    )
    assert ran.exit_code == 0, ran.output
    limit = json.loads(ran.output)
    assert reads == [1, 2], "read, refused at 1, read again"
    assert (limit["max_running"], limit["paused"], limit["version"]) == (2, True, 3)
    assert limit["rate"] == {"count": 10, "per_seconds": 60.0}


async def test_set_in_a_workspace_that_does_not_exist_fails_at_once(
    server: RunningServer, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 404 names what it did not find (`resource`): a missing workspace is no limit
    "not made yet" and no limit deleted meanwhile, so `limits set` neither puts nor reads
    again after a backoff; it says so once."""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["instance_admin"]}
    calls: list[str] = []
    read, put = Client.get_limit, Client.put_limit

    def counted_read(client: Client, name: str) -> dict[str, Any]:
        calls.append("get")
        return read(client, name)

    def counted_put(client: Client, name: str, **given: Any) -> dict[str, Any]:
        calls.append("put")
        return put(client, name, **given)

    monkeypatch.setattr(Client, "get_limit", counted_read)
    monkeypatch.setattr(Client, "put_limit", counted_put)
    ran = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["limits", "set", "openai", "--max-running", "2", "--workspace", "nowhere"],
        env=env,
    )
    assert ran.exit_code == 2, ran.output  # a request the server found wrong
    assert "workspace nowhere not found" in ran.output, ran.output
    assert calls == ["get"], "no put, no second read"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_set_with_nothing_to_change_is_a_usage_error_and_writes_nothing(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """`limits set NAME` alone put the limit back as it was, bumping its version and
    updated_at (a spurious 409 for whoever held it); like `workspace set`, it now asks
    for a setting."""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor("limits", "set", "openai", "--max-running", "2", "--json", env=env)
    assert ran.code == 0, ran.output
    before = json.loads(ran.out)

    ran = await conveyor("limits", "set", "openai", env=env)
    assert ran.code == 2, ran.output
    assert "name a setting to change" in ran.err, ran.err
    ran = await conveyor("limits", "set", "never-made", env=env)
    assert ran.code == 2, ran.output

    ran = await conveyor("limits", "list", "--json", env=env)
    assert json.loads(ran.out) == [before], "nothing was written, nothing made"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_set_with_both_pause_and_resume_is_a_usage_error_and_writes_nothing(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """`--pause --resume` was taken (the last one winning) and made the limit unpaused."""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    for flags in (("--pause", "--resume"), ("--resume", "--max-running", "3", "--pause")):
        ran = await conveyor("limits", "set", "zz", *flags, env=env)
        assert ran.code == 2, ran.output
        assert "--pause and --resume contradict each other" in ran.err, ran.err
    ran = await conveyor("limits", "list", "--json", env=env)
    assert json.loads(ran.out) == [], "nothing made"
    ran = await conveyor("limits", "set", "zz", "--pause", "--json", env=env)
    assert (ran.code, json.loads(ran.out)["paused"]) == (0, True), ran.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_url_with_the_api_path_after_it_says_to_give_the_base_url(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """`--url http://host:port/v1` answered only `error: Not Found`: every request went
    to /v1/v1/… where no route is. A 404 that names no resource, where no Conveyor API
    answers `/v1/me` either, is a wrong --url."""
    env = {"CONVEYOR_API_KEY": keys["admin"]}
    wrong = f"{server.url}/v1"
    for command in (
        ("limits", "list"),
        ("limits", "show", "openai", "--workspace", "acme"),  # no /v1/me first: the limit's
        ("limits", "set", "openai", "--max-running", "2", "--workspace", "acme"),
        ("jobs", "list"),
    ):
        ran = await conveyor(*command, "--url", wrong, env=env)
        assert ran.code == 1, (command, ran.output)
        assert f"no Conveyor API answered at {wrong} " in ran.err, (command, ran.err)
        assert "takes the server's base URL" in ran.err, ran.err

    # At the right URL, a path no route serves (a name with a slash) is the server's 404.
    right = {"CONVEYOR_URL": server.url, **env}
    ran = await conveyor("schedules", "show", "a/b", env=right)
    assert ran.code == 2, ran.output
    assert "no Conveyor API" not in ran.err, ran.err
