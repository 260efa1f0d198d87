"""The `conveyor` command as a user runs it: administration straight on the database, and
job commands against a running server."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL
from tests.support.processes import REPO
from tests.support.server import RunningServer


async def conveyor(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "conveyor.cli.main",
        *args,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_migrate_workspaces_and_keys_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code, out = await conveyor("migrate", "--database-url", url)
    assert code == 0, out
    assert "schema at" in out
    code, out = await conveyor("workspace", "create", "team-a", "--database-url", url)
    assert code == 0, out
    code, out = await conveyor("workspace", "create", "Team A", "--database-url", url)
    assert code == 1
    assert "name" in out
    code, out = await conveyor("workspace", "list", "--database-url", url)
    assert "team-a" in out
    code, out = await conveyor(
        "key",
        "create",
        "--workspace",
        "team-a",
        "--role",
        "worker",
        "--name",
        "ci",
        "--database-url",
        url,
    )
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("cvk_")
    code, out = await conveyor("key", "list", "--workspace", "team-a", "--database-url", url)
    assert "worker" in out
    assert "ci" in out
    assert token not in out, "secrets are shown once, never listed"
    key_id = next(line.split()[0] for line in out.splitlines() if "worker" in line)
    code, out = await conveyor(
        "key", "revoke", "--workspace", "team-a", key_id, "--database-url", url
    )
    assert code == 0, out
    code, out = await conveyor("key", "list", "--workspace", "team-a", "--database-url", url)
    assert "-" not in [line.split()[-1] for line in out.splitlines() if key_id in line]


async def test_serve_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    code, out = await conveyor("serve", "--database-url", url, "--port", "1")
    assert code == 1
    assert "conveyor migrate" in out


async def test_serve_without_keys_only_on_loopback() -> None:
    code, out = await conveyor("serve", "--insecure-local", "--host", "0.0.0.0", "--port", "1")
    assert code == 1
    assert "loopback" in out


async def test_job_commands_against_a_running_server(
    server: RunningServer, keys: dict[str, str], database_url: DatabaseURL
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    code, out = await conveyor(
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
        "--json",
        env=env,
    )
    assert code == 0, out
    job = json.loads(out)
    assert (job["priority"], job["agent_task_id"]) == (2, "t-9")
    code, out = await conveyor("jobs", "list", env=env)
    assert job["id"] in out
    assert "report.build" in out
    code, out = await conveyor("jobs", "list", "--status", "completed", env=env)
    assert job["id"] not in out
    code, out = await conveyor("jobs", "show", job["id"], env=env)
    assert "job.created" in out
    assert '"month": "11"' in out
    code, out = await conveyor("jobs", "cancel", job["id"], env=env)
    assert "CANCELLED" in out
    code, out = await conveyor("jobs", "cancel", job["id"], env=env)
    assert code == 2
    assert "cannot move from CANCELLED" in out
    code, out = await conveyor("jobs", "retry", job["id"], env=env)
    assert code == 0
    assert "retried as job" in out
    code, out = await conveyor("status", env=env)
    assert code == 0, out
    assert "report.build" in out
    assert "CANCELLED" in out
    code, out = await conveyor("jobs", "show", "not-a-job", env=env)
    assert code == 2
    code, out = await conveyor(
        "jobs", "list", env={"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": "cvk_bad"}
    )
    assert code == 1
    assert "not valid" in out


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_cli_finds_the_bootstrap_key_file(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    (tmp_path / "conveyor-admin.key").write_text(keys["admin"] + "\n")
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": ""}
    code, out = await conveyor("jobs", "list", env=env, cwd=tmp_path)
    assert code == 0, out


async def test_worker_needs_exactly_one_readable_key(tmp_path: Path) -> None:
    no_key = {"CONVEYOR_API_KEY": ""}
    handlers = ("--handlers", "tests.worker.handlers_for_tests:handlers")
    code, out = await conveyor("worker", *handlers, env=no_key)
    assert (code, "no API key" in out) == (1, True), out
    missing = tmp_path / "absent.key"
    code, out = await conveyor("worker", "--key-file", str(missing), *handlers, env=no_key)
    assert (code, "cannot read the key file" in out) == (1, True), out
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    code, out = await conveyor("worker", "--key-file", str(empty), *handlers, env=no_key)
    assert (code, "is empty" in out) == (1, True), out
    code, out = await conveyor(
        "worker", "--key", "cvk_x", "--key-file", str(empty), *handlers, env=no_key
    )
    assert (code, "not both" in out) == (1, True), out
