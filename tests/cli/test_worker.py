"""`conveyor worker`'s key: exactly one, readable, from a flag, a file or the environment."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.cli.helpers import conveyor, finish, start
from tests.support.server import RunningServer
from tests.worker.conftest import eventually

HANDLERS = ("--handlers", "tests.worker.handlers_for_tests:handlers")


async def test_worker_needs_exactly_one_readable_key(tmp_path: Path) -> None:
    ran = await conveyor("worker", *HANDLERS, cwd=tmp_path)
    assert (ran.code, "no API key" in ran.err) == (1, True), ran.output
    missing = tmp_path / "absent.key"
    ran = await conveyor("worker", "--key-file", str(missing), *HANDLERS)
    assert (ran.code, "cannot read the key file" in ran.err) == (1, True), ran.output
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    ran = await conveyor("worker", "--key-file", str(empty), *HANDLERS)
    assert (ran.code, "is empty" in ran.err) == (1, True), ran.output
    ran = await conveyor("worker", "--key", "cvk_x", "--key-file", str(empty), *HANDLERS)
    assert (ran.code, "not both" in ran.err) == (1, True), ran.output
    ran = await conveyor(
        "worker", *HANDLERS, env={"CONVEYOR_API_KEY_FILE": str(missing)}, cwd=tmp_path
    )
    assert (ran.code, "cannot read the key file" in ran.err) == (1, True), ran.output


async def test_a_worker_whose_key_is_refused_stops_with_one_clear_line(
    server: RunningServer, keys: dict[str, str], tmp_path: Path
) -> None:
    """A revoked or unknown key (401) or one without the right to claim (403) cannot
    come good by retrying: the worker exits non-zero and says so."""
    unknown = tmp_path / "unknown.key"
    unknown.write_text("cvk_" + "0" * 32 + "_not-a-real-secret\n")
    ran = await conveyor("worker", "--url", server.url, "--key-file", str(unknown), *HANDLERS)
    assert ran.code == 1, ran.output
    assert "refused this worker's key (401)" in ran.err, ran.output
    client_key = tmp_path / "client.key"
    client_key.write_text(keys["client"] + "\n")
    ran = await conveyor("worker", "--url", server.url, "--key-file", str(client_key), *HANDLERS)
    assert (ran.code, "refused this worker's key (403)" in ran.err) == (1, True), ran.output
    assert "HTTP Request:" not in ran.output, "no log line per HTTP request"


async def test_a_worker_given_a_workspace_that_does_not_exist_stops_with_one_clear_line(
    server: RunningServer, keys: dict[str, str], tmp_path: Path
) -> None:
    """A workspace that does not exist is a mistake in the worker's configuration, as a
    refused key is: no retrying (with a traceback each time), one line and exit 1."""
    key_file = tmp_path / "pool.key"
    key_file.write_text(keys["instance_worker"] + "\n")
    worker = await start(
        "worker", "--url", server.url, "--key-file", str(key_file), *HANDLERS,
        "--workspace", "nope",
    )  # fmt: skip
    try:
        ran = await asyncio.wait_for(finish(worker), 30)
    finally:
        if worker.returncode is None:  # still retrying: the defect this test is about
            worker.kill()
            await worker.wait()
    assert ran.code == 1, ran.output
    assert ran.err.splitlines()[-1] == (
        "error: Conveyor refused this worker's claims (404): workspace nope not found (a "
        "worker claims only from workspaces that exist, and with a workspace key only from "
        "its own)"
    ), ran.output
    assert "Traceback" not in ran.output


async def test_a_worker_given_the_api_path_after_the_url_says_to_give_the_base_url(
    server: RunningServer, keys: dict[str, str], tmp_path: Path
) -> None:
    """`--url http://host:port/v1`: its claims go to /v1/v1/claims, where no route is. The
    404 names nothing, so it is no missing workspace (which the worker said it was): the
    worker stops saying what --url takes, as every other command does."""
    key_file = tmp_path / "worker.key"
    key_file.write_text(keys["worker"] + "\n")
    wrong = f"{server.url}/v1"
    worker = await start("worker", "--url", wrong, "--key-file", str(key_file), *HANDLERS)
    try:
        ran = await asyncio.wait_for(finish(worker), 30)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert ran.code == 1, ran.output
    last = ran.err.splitlines()[-1]
    assert last.startswith(f"error: no Conveyor API answered at {wrong} "), ran.output
    assert "takes the server's base URL" in last, ran.output
    assert "workspace" not in last, ran.output


async def test_an_instance_worker_serves_the_workspaces_it_is_given(
    server: RunningServer, keys: dict[str, str], tmp_path: Path
) -> None:
    """With an instance key, `conveyor worker --workspace other` claims only there; without
    --workspace it serves every workspace."""
    key_file = tmp_path / "pool.key"
    key_file.write_text(keys["instance_worker"] + "\n")
    jobs: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        # Both jobs wait before the worker starts: its first claim could take both.
        for workspace, key in (("acme", keys["admin"]), ("other", keys["other"])):
            created = await http.post(
                f"/v1/workspaces/{workspace}/jobs",
                json={"type": "test.echo", "payload": {"from": workspace}},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 201, created.text
            jobs[workspace] = created.json()["id"]

        async def status(workspace: str) -> str:
            key = keys["admin"] if workspace == "acme" else keys["other"]
            found = await http.get(
                f"/v1/workspaces/{workspace}/jobs/{jobs[workspace]}",
                headers={"Authorization": f"Bearer {key}"},
            )
            return str(found.json()["status"])

        async def completed(workspace: str) -> bool:
            return await status(workspace) == "COMPLETED"

        command = ("worker", "--url", server.url, "--key-file", str(key_file), *HANDLERS)
        worker = await start(*command, "--workspace", "other")
        try:
            await eventually(lambda: completed("other"), what="the other workspace's job")
        finally:
            worker.send_signal(signal.SIGTERM)
            ran = await finish(worker)
        assert ran.code == 0, ran.output
        assert await status("acme") == "QUEUED", "acme's job was not the worker's to take"

        worker = await start(*command)
        try:
            await eventually(lambda: completed("acme"), what="acme's job, by the same key")
        finally:
            worker.send_signal(signal.SIGTERM)
            await finish(worker)
