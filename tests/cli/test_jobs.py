"""`conveyor jobs` and `conveyor status` against a running server, as a user types them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from conveyor.store.urls import DatabaseURL
from tests.cli.helpers import conveyor, finish, start
from tests.support.postgres import free_port
from tests.support.server import RunningServer


async def test_job_commands_against_a_running_server(
    server: RunningServer, keys: dict[str, str], database_url: DatabaseURL
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor(
        "jobs",
        "create",
        "--type",
        "report.build",
        "--payload",
        '{"month": "11"}',
        "--priority",
        "2",
        "--agent-task",
        "t-9",
        "--timeout",
        "90",
        "--json",
        env=env,
    )
    assert ran.code == 0, ran.output
    job = json.loads(ran.out)
    assert (job["priority"], job["agent_task_id"], job["timeout_seconds"]) == (2, "t-9", 90)
    ran = await conveyor("jobs", "list", env=env)
    assert job["id"] in ran.out
    assert "report.build" in ran.out
    assert ran.out.rstrip().endswith("page 1 of 1 · 1 job"), ran.out
    ran = await conveyor("jobs", "list", "--status", "completed", env=env)
    assert job["id"] not in ran.out
    assert ran.out.rstrip().endswith("· 0 jobs"), ran.out
    ran = await conveyor("jobs", "show", job["id"], env=env)
    assert "job.created" in ran.out
    assert '"month": "11"' in ran.out
    assert any(line.split() == ["timeout", "90", "s"] for line in ran.out.splitlines()), ran.out
    ran = await conveyor("jobs", "cancel", job["id"], env=env)
    assert "CANCELLED" in ran.out
    ran = await conveyor("jobs", "cancel", job["id"], env=env)
    assert ran.code == 2
    assert "cannot move from CANCELLED" in ran.err
    ran = await conveyor("jobs", "retry", job["id"], env=env)
    assert ran.code == 0
    assert "retried as job" in ran.out
    ran = await conveyor("status", env=env)
    assert ran.code == 0, ran.output
    assert "report.build" in ran.out
    assert "CANCELLED" in ran.out
    ran = await conveyor("jobs", "show", "not-a-job", env=env)
    assert ran.code == 2
    ran = await conveyor(
        "jobs", "list", env={"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": "cvk_bad"}
    )
    assert ran.code == 1
    assert "not valid" in ran.err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_cli_finds_the_bootstrap_key_file(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    ran = await conveyor("jobs", "list", env={"CONVEYOR_URL": server.url}, cwd=tmp_path)
    assert (ran.code, "no API key" in ran.err) == (1, True), ran.output
    (tmp_path / "conveyor-admin.key").write_text(keys["admin"] + "\n")
    ran = await conveyor("jobs", "list", env={"CONVEYOR_URL": server.url}, cwd=tmp_path)
    assert ran.code == 0, ran.output


def throughput_row(status_output: str, label: str) -> list[int]:
    """The COMPLETED, FAILED and CANCELLED counts `conveyor status` prints for a window."""
    lines = [line.strip() for line in status_output.splitlines()]
    line = next((line for line in lines if line.startswith(label)), None)
    assert line is not None, f"no {label!r} line in:\n{status_output}"
    return [int(word) for word in line[len(label) :].split()]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_create_a_job_for_later_and_under_a_key(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    later = "jobs create --type t --run-at 2031-01-02T03:04:05+00:00 --concurrency-key acme --json"
    ran = await conveyor(*later.split(), env=env)
    assert ran.code == 0, ran.output
    job = json.loads(ran.out)
    assert job["run_at"].startswith("2031-01-02T03:04:05"), job
    assert job["concurrency_key"] == "acme"
    ran = await conveyor("jobs", "show", job["id"], env=env)
    due = [line.split()[:3] for line in ran.out.splitlines() if line.startswith("due")]
    assert due == [["due", job["run_at"], "(in"]], ran.out
    ran = await conveyor("jobs", "list", env=env)
    assert "QUEUED due in " in ran.out, ran.out
    ran = await conveyor("jobs", "create", "--type", "t", "--run-at", "tomorrow", env=env)
    assert ran.code != 0
    assert "run_at" in ran.err, ran.err
    ran = await conveyor("jobs", "create", "--type", "BAD", env=env)
    assert ran.code == 2
    assert "'^[a-z0-9_.:-]{1,100}$'" in ran.err, "the server's pattern, brackets and all"


async def test_create_watch_and_quiet_then_status_shows_throughput(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    worker_key = tmp_path / "worker.key"
    worker_key.write_text(keys["worker"] + "\n")
    worker = await start(
        "worker",
        "--url",
        server.url,
        "--key-file",
        str(worker_key),
        "--handlers",
        "tests.worker.handlers_for_tests:handlers",
        env={"CONVEYOR_LOG_FORMAT": "text"},
    )
    try:
        ran = await conveyor(
            "jobs", "create", "--type", "test.echo", "--payload", '{"n": 1}', "--watch", env=env
        )
        assert ran.code == 0, ran.output
        assert ran.out.startswith("created job "), ran.out
        assert "job.started" in ran.out
        assert "job.completed" in ran.out
        assert ran.out.rstrip().splitlines()[-1].startswith("COMPLETED"), ran.out

        ran = await conveyor("jobs", "create", "-q", "--type", "test.echo", env=env)
        assert ran.code == 0, ran.output
        quiet_id = UUID(ran.out.strip())
        assert ran.out == f"{quiet_id}\n"
        assert ran.err == ""

        ran = await conveyor(
            "jobs", "create", "--type", "test.permanent", "--quiet", "--watch", env=env
        )
        assert ran.code == 1, "exit 1: the job FAILED"
        failed_id = UUID(ran.out.strip())
        assert ran.out == f"{failed_id}\n"
        ran = await conveyor("jobs", "show", str(failed_id), "--json", env=env)
        assert json.loads(ran.out)["status"] == "FAILED"

        ran = await conveyor("jobs", "watch", str(quiet_id), env=env)
        assert ran.code == 0, ran.output

        ran = await conveyor("status", env=env)
        assert ran.code == 0, ran.output
        assert throughput_row(ran.out, "last 15 min") == [2, 1, 0], ran.out
        assert throughput_row(ran.out, "last 60 min") == [2, 1, 0], ran.out
        assert "no live worker serves" not in ran.out
    finally:
        worker.send_signal(signal.SIGTERM)
        await finish(worker)


async def test_an_unreachable_server_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ran = await conveyor("jobs", "--url", url, "--key", "cvk_x", "list", cwd=tmp_path)
    assert ran.code == 1
    assert len(ran.err.splitlines()) == 1, ran.err
    assert ran.err.startswith(f"error: cannot reach the server at {url}: "), ran.err


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_list_follow_prints_each_change_until_interrupted(
    database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    follower = await start("jobs", "list", "--follow", env=env)
    assert follower.stdout is not None
    try:
        header = await asyncio.wait_for(follower.stdout.readline(), 30)
        assert header.decode().split()[:2] == ["ID", "TYPE"]
        footer = await asyncio.wait_for(follower.stdout.readline(), 30)
        assert footer.decode().strip() == "page 1 of 1 · 0 jobs"
        # The stream starts from "now" just after the page: a job created in between is
        # not followed, so create jobs until one is seen (the first, nearly always).
        for _ in range(20):
            created = await conveyor("jobs", "create", "-q", "--type", "report.build", env=env)
            job_id = created.out.strip()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    line = (await follower.stdout.readline()).decode()
                    while job_id not in line:
                        line = (await follower.stdout.readline()).decode()
                    assert line.split()[1:] == [job_id, "report.build", "CREATED"], line
                    line = (await follower.stdout.readline()).decode()
                    assert line.split()[1:] == [job_id, "report.build", "QUEUED"], line
                    break
        else:
            raise AssertionError("no change of a created job was printed")
        await conveyor("jobs", "cancel", job_id, env=env)
        line = (await asyncio.wait_for(follower.stdout.readline(), 30)).decode()
        assert line.split()[1:] == [job_id, "report.build", "CANCELLED"], line
    finally:
        follower.send_signal(signal.SIGINT)
        stopped = await finish(follower)
    assert stopped.code == 0, stopped.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_idempotency_key_used_before_names_the_job_it_made(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    create = ("jobs", "create", "--type", "t.y", "--idempotency-key", "dup")
    first = await conveyor(*create, env=env)
    assert first.code == 0, first.output
    assert first.out.startswith("created job "), first.out
    job_id = first.out.split()[2]
    again = await conveyor(*create, env=env)
    assert again.code == 0, again.output
    assert again.out.split("(")[0].split() == [
        "job", job_id, "already", "exists", "for", "idempotency", "key", "dup"
    ], again.out  # fmt: skip
    quiet = await conveyor(*create, "-q", env=env)
    assert quiet.out == f"{job_id}\n"
    answered = json.loads((await conveyor(*create, "--json", env=env)).out)
    assert (answered["id"], answered["created"]) == (job_id, False)
    other = json.loads((await conveyor("jobs", "create", "--type", "t.y", "--json", env=env)).out)
    assert other["created"] is True


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_key_of_the_schedulers_is_refused_in_one_line(
    server: RunningServer, keys: dict[str, str]
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    ran = await conveyor(
        "jobs", "create", "--type", "t", "--idempotency-key", "schedule:x", env=env
    )
    assert (ran.code, ran.out) == (2, ""), ran.output
    assert ran.err == (
        "error: idempotency_key: must not begin with 'schedule:': that prefix is the "
        "scheduler's (a schedule's jobs have the keys schedule:<id>:…)\n"
    ), ran.err
    assert "0 jobs" in (await conveyor("jobs", "list", env=env)).out


TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\u2066", "\r")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_what_a_client_stored_cannot_drive_the_terminal(
    server: RunningServer, keys: dict[str, str]
) -> None:
    """A key's holder stored escapes (ESC, BEL, C1's CSI, DEL, CR, bidi overrides and
    isolates) in free text: the CLI prints them written out, never raw; --json stays exact.
    (A concurrency key may hold none of them: tests/api/test_worker_api.py.)"""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    hostile = {
        "type": "demo.echo",
        "agent_task_id": "\x1b]0;pwned\x07",
        "payload": {"x": "\x1b[2J\u202e\x7f"},
    }
    async with httpx.AsyncClient(
        base_url=f"{server.url}/v1/workspaces/acme",
        headers={"Authorization": f"Bearer {keys['worker']}"},
    ) as http:
        created = await http.post(
            "/jobs", json=hostile, headers={"Authorization": f"Bearer {keys['admin']}"}
        )
        assert created.status_code == 201, created.text
        job = created.json()
        [claimed] = (await http.post("/claims", json={"worker_id": "w"})).json()["data"]
        step = await http.post(
            f"/jobs/{job['id']}/steps",
            json={
                "name": "\x1b[31mstep\r\x9b31mC1\u202eevil\u2066",
                "lease_id": claimed["lease_id"],
            },
        )
        assert step.status_code == 201, step.text
        failed = await http.post(
            f"/jobs/{job['id']}/fail",
            json={"lease_id": claimed["lease_id"], "error": "boom\x1b[2J\nsecond line"},
        )
        assert failed.status_code == 200, failed.text

    listed = await conveyor("jobs", "list", env=env)
    shown = await conveyor("jobs", "show", job["id"], env=env)
    for ran in (listed, shown):
        assert ran.code == 0, ran.output
        assert not [c for c in TERMINAL_CONTROLS if c in ran.out], ascii(ran.out)
    assert "\\x1b]0;pwned\\x07" in listed.out, listed.out
    assert "\\x9b31mC1\\u202eevil\\u2066" in shown.out, shown.out
    assert "\\x1b[31mstep\\x0d" in shown.out, shown.out
    assert "\\u202e\\x7f" in shown.out, "the payload's JSON, its non-ASCII written out too"
    lines = shown.out.splitlines()
    error_at = next(i for i, line in enumerate(lines) if line.startswith("error"))
    assert lines[error_at].split() == ["error", "boom\\x1b[2J"], shown.out
    assert lines[error_at + 1].strip() == "second line", "an error's line breaks stay"

    exact = await conveyor("jobs", "show", job["id"], "--json", env=env)
    answer = json.loads(exact.out)
    assert answer["agent_task_id"] == hostile["agent_task_id"]

    refused = await conveyor("limits", "show", "\x1b[31mnone\u202e", env=env)
    assert refused.code == 2, refused.output
    assert "\\x1b[31mnone\\u202e" in refused.err, refused.err
    assert not [c for c in TERMINAL_CONTROLS if c in refused.err], ascii(refused.err)
