"""`conveyor workspace set|show`, `conveyor prune`, and the bulk and list options of
`conveyor jobs`, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from conveyor.domain.jobs import JobSpec, JobStatus
from conveyor.domain.workspaces import Workspace
from conveyor.service.jobs import JobService
from conveyor.store import Store
from conveyor.store.urls import DatabaseURL
from tests.cli.helpers import COMMAND, Ran, conveyor, environment
from tests.service.helpers import ACTOR, job_in_status
from tests.service.test_pruning import backdate, exists
from tests.support.server import RunningServer


async def answering(answer: str, *args: str, env: dict[str, str]) -> Ran:
    """Run `conveyor …` typing `answer` at its prompt."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        env=environment(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(answer.encode()), 60)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def setting_rows(out: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("retention."):
            rows[parts[0]] = (parts[1], parts[2])
    return rows


async def test_workspace_set_and_show(database_url: DatabaseURL, workspace: Workspace) -> None:
    url = ("--database-url", database_url.url)
    env = {"CONVEYOR_RETENTION_CANCELLED_DAYS": "forever"}
    ran = await conveyor("workspace", "show", "acme", *url, env=env)
    assert ran.code == 0, ran.output
    assert setting_rows(ran.out) == {
        "retention.completed_days": ("14", "instance"),
        "retention.failed_days": ("30", "instance"),
        "retention.cancelled_days": ("forever", "instance"),
    }
    assert "0 jobs deleted by retention" in ran.out

    ran = await conveyor(
        "workspace", "set", "acme", "--completed-days", "3", "--failed-days", "none", *url, env=env
    )
    assert ran.code == 0, ran.output
    assert setting_rows(ran.out)["retention.completed_days"] == ("3", "workspace")
    assert setting_rows(ran.out)["retention.failed_days"] == ("forever", "workspace")
    ran = await conveyor("workspace", "set", "acme", "--completed-days", "default", *url, env=env)
    assert setting_rows(ran.out) == {
        "retention.completed_days": ("14", "instance"),
        "retention.failed_days": ("forever", "workspace"),
        "retention.cancelled_days": ("forever", "instance"),
    }

    for wrong in (("--failed-days", "-2"), ("--failed-days", "soon"), ()):
        ran = await conveyor("workspace", "set", "acme", *wrong, *url)
        assert ran.code == 2, (wrong, ran.output)
    ran = await conveyor("workspace", "set", "nope", "--failed-days", "1", *url)
    assert ran.code == 1
    assert "nope" in ran.err


async def test_prune_by_hand_dry_and_for_real(
    database_url: DatabaseURL, store: Store, service: JobService, workspace: Workspace
) -> None:
    url = ("--database-url", database_url.url)
    old = [await job_in_status(service, workspace.id, JobStatus.CANCELLED) for _ in range(3)]
    for job in old:
        await backdate(store, job.id, 20)
    young = await job_in_status(service, workspace.id, JobStatus.CANCELLED)

    ran = await conveyor("prune", "--dry-run", *url)
    assert ran.code == 0, ran.output
    assert "acme" in ran.out
    assert "CANCELLED" in ran.out
    assert "would delete 3 jobs" in ran.out
    assert all([await exists(service, workspace, job.id) for job in old])

    ran = await conveyor("prune", "--workspace", "acme", "--json", *url)
    assert ran.code == 0, ran.output
    report = json.loads(ran.out)
    assert report["jobs"] == 3
    assert [(d["workspace"], d["status"], d["jobs"]) for d in report["deleted"]] == [
        ("acme", "CANCELLED", 3)
    ]
    assert report["deleted"][0]["events"] == 9
    assert not any([await exists(service, workspace, job.id) for job in old])
    assert await exists(service, workspace, young.id)

    ran = await conveyor("prune", *url)
    assert (ran.code, ran.out.strip()) == (0, "nothing to delete")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_prune_says_one_job_in_the_singular(
    database_url: DatabaseURL, store: Store, service: JobService, workspace: Workspace
) -> None:
    url = ("--database-url", database_url.url)
    job = await job_in_status(service, workspace.id, JobStatus.CANCELLED)
    await backdate(store, job.id, 20)
    ran = await conveyor("prune", "--dry-run", *url)
    assert re.search(r"^would delete 1 job in \S+s$", ran.out, re.MULTILINE), ran.out
    ran = await conveyor("prune", *url)
    assert re.search(r"^deleted 1 job in \S+s$", ran.out, re.MULTILINE), ran.out


async def test_jobs_cancel_and_retry_all_matching(
    server: RunningServer, keys: dict[str, str], service: JobService, workspace: Workspace
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    specs = [JobSpec(type="mail.send") for _ in range(3)] + [JobSpec(type="sms.send")]
    created = await service.create_jobs(workspace.id, specs, ACTOR)
    mail = [job.id for job, _ in created[:3]]

    ran = await answering(
        "n\n", "jobs", "cancel", "--all", "--status", "queued", "--type", "mail.send", env=env
    )
    assert ran.code == 1, ran.output
    assert "Cancel 3 jobs" in ran.err, "the prompt says how many"
    assert {(await service.get_job(workspace.id, i)).status for i in mail} == {JobStatus.QUEUED}

    ran = await answering("y\n", "jobs", "cancel", "--all", "--type-prefix", "mail", env=env)
    assert ran.code == 0, ran.output
    assert "cancelled 3 jobs" in ran.out
    assert {(await service.get_job(workspace.id, i)).status for i in mail} == {JobStatus.CANCELLED}
    ran = await conveyor("jobs", "cancel", "--all", "--type", "mail.send", "--yes", env=env)
    assert (ran.code, ran.out.strip()) == (0, "no pending, queued or running job matches")

    ran = await conveyor(
        "jobs", "retry", "--all", "--status", "CANCELLED", "--yes", "--json", env=env
    )
    assert ran.code == 0, ran.output
    assert (json.loads(ran.out)["matched"], json.loads(ran.out)["changed"]) == (3, 3)

    for wrong in (("cancel",), ("cancel", str(mail[0]), "--all"), ("retry", "--type", "x")):
        ran = await conveyor("jobs", *wrong, env=env)
        assert ran.code == 2, (wrong, ran.output)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_jobs_list_filters_and_cursor(
    server: RunningServer, keys: dict[str, str], service: JobService, workspace: Workspace
) -> None:
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    await service.create_jobs(
        workspace.id, [JobSpec(type="t", concurrency_key=f"k{i % 2}") for i in range(5)], ACTOR
    )
    ran = await conveyor("jobs", "list", "--concurrency-key", "k0", "--json", env=env)
    assert ran.code == 0, ran.output
    assert json.loads(ran.out)["meta"]["total"] == 3
    first = json.loads((await conveyor("jobs", "list", "--limit", "2", "--json", env=env)).out)
    cursor = first["meta"]["next_cursor"]
    ran = await conveyor("jobs", "list", "--limit", "2", "--cursor", cursor, env=env)
    assert ran.code == 0, ran.output
    assert "by cursor" in ran.out
    assert "next: --cursor" in ran.out
    ran = await conveyor("jobs", "list", "--created-after", "2999-01-01T00:00:00Z", env=env)
    assert ran.out.rstrip().endswith("· 0 jobs"), ran.out


def listed_ids(out: str) -> list[str]:
    """The job ids of a `jobs list` table, top to bottom."""
    return re.findall(r"^([0-9a-f-]{36}) ", out, flags=re.MULTILINE)


def next_line(out: str) -> str | None:
    return next((line for line in out.splitlines() if line.startswith("next: ")), None)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_jobs_list_says_how_to_list_the_next_page(
    server: RunningServer, keys: dict[str, str], service: JobService, workspace: Workspace
) -> None:
    """`jobs list --limit 2` printed `page 1 of 3` and no way on but --json: each page that
    has one after it now names both ways to it; the last names none."""
    env = {"CONVEYOR_URL": server.url, "CONVEYOR_API_KEY": keys["admin"]}
    await service.create_jobs(workspace.id, [JobSpec(type="t") for _ in range(5)], ACTOR)
    everything = json.loads((await conveyor("jobs", "list", "--json", env=env)).out)
    newest_first = [job["id"] for job in everything["data"]]

    ran = await conveyor("jobs", "list", "--limit", "2", env=env)
    assert ran.code == 0, ran.output
    assert listed_ids(ran.out) == newest_first[:2]
    hint = next_line(ran.out)
    assert hint is not None, ran.out
    match = re.fullmatch(r"next: --page 2 or --cursor (\S+) \(with the same options\)", hint)
    assert match is not None, hint
    cursor = match.group(1)

    by_number = await conveyor("jobs", "list", "--limit", "2", "--page", "2", env=env)
    by_cursor = await conveyor("jobs", "list", "--limit", "2", "--cursor", cursor, env=env)
    assert listed_ids(by_number.out) == listed_ids(by_cursor.out) == newest_first[2:4]
    assert (next_line(by_cursor.out) or "").startswith("next: --cursor "), by_cursor.out

    last = await conveyor("jobs", "list", "--limit", "2", "--page", "3", env=env)
    assert listed_ids(last.out) == newest_first[4:]
    assert next_line(last.out) is None, last.out

    ran = await conveyor("jobs", "list", "--page", "2", "--cursor", cursor, env=env)
    assert ran.code == 2, ran.output
    assert "page by cursor or by page number, not both" in ran.err, ran.err
