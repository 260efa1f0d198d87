"""Options go where a person types them: `conveyor jobs --url U list` and
`conveyor jobs list --url U` mean the same; given in both places, the subcommand's wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL
from tests.cli.helpers import conveyor
from tests.support.server import RunningServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def test_server_options_before_and_after_the_subcommand(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(keys["admin"] + "\n")
    ran = await conveyor(
        "jobs", "create", "--type", "report.build", "--url", server.url, "--key", keys["admin"]
    )
    assert ran.code == 0, ran.output
    job_id = ran.out.split()[2]
    for credential in (("--key", keys["admin"]), ("--key-file", str(key_file))):
        options = ("--url", server.url, *credential, "--workspace", "acme", "--json")
        for args in (("jobs", *options, "list"), ("jobs", "list", *options)):
            ran = await conveyor(*args, cwd=tmp_path)
            assert ran.code == 0, (args, ran.output)
            assert [job["id"] for job in json.loads(ran.out)["data"]] == [job_id], args
        for args in (("jobs", *options, "show", job_id), ("jobs", "show", job_id, *options)):
            ran = await conveyor(*args, cwd=tmp_path)
            assert json.loads(ran.out)["id"] == job_id, (args, ran.output)
    ran = await conveyor(
        "status", "--url", server.url, "--key-file", str(key_file), "--workspace", "acme", "--json"
    )
    assert json.loads(ran.out)["by_status"]["QUEUED"] == 1, ran.output


async def test_the_subcommand_wins_and_flags_beat_the_environment(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    ran = await conveyor(
        "jobs",
        "--url",
        "http://127.0.0.1:9",
        "--workspace",
        "other",
        "--key",
        "cvk_wrong",
        "list",
        "--url",
        server.url,
        "--workspace",
        "acme",
        "--key",
        keys["admin"],
        "--json",
        cwd=tmp_path,
    )
    assert ran.code == 0, ran.output
    assert json.loads(ran.out)["meta"]["total"] == 0
    unreachable = {"CONVEYOR_URL": "http://127.0.0.1:9", "CONVEYOR_WORKSPACE": "other"}
    ran = await conveyor(
        "jobs",
        "--url",
        server.url,
        "--key",
        keys["admin"],
        "--workspace",
        "acme",
        "list",
        env=unreachable,
        cwd=tmp_path,
    )
    assert ran.code == 0, ran.output


async def test_one_credential_at_a_time(
    tmp_path: Path, database_url: DatabaseURL, server: RunningServer, keys: dict[str, str]
) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(keys["admin"] + "\n")
    ran = await conveyor(
        "jobs", "list", "--url", server.url, "--key", keys["admin"], "--key-file", str(key_file)
    )
    assert (ran.code, "not both" in ran.err) == (1, True), ran.output
    # Given at different levels, they are not both: the subcommand's credential wins.
    ran = await conveyor(
        "jobs", "--key", "cvk_wrong", "list", "--url", server.url, "--key-file", str(key_file)
    )
    assert ran.code == 0, ran.output
