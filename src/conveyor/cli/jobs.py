"""`conveyor jobs …`: create, list, show, cancel, retry and watch jobs on a running server."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from conveyor.cli import render
from conveyor.cli.connection import Connection, connection_group_options, connection_options
from conveyor.cli.shared import console, fail
from conveyor.client import Client
from conveyor.domain.jobs import JobStatus

# `jobs watch` (and `jobs create --watch`) exit with the job's outcome, for scripts.
EXIT_CODES = {JobStatus.COMPLETED.value: 0, JobStatus.FAILED.value: 1, JobStatus.CANCELLED.value: 3}


@click.group()
@connection_group_options
def jobs() -> None:
    """Create, list, show, cancel, retry and watch jobs on a running server."""


def parse_payload(text: str | None) -> Any:
    if text is None:
        return {}
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as error:
            fail(f"cannot read the payload file: {error}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--payload is not JSON: {error}")


def follow_to_the_end(
    connection: Connection, client: Client, job_id: str, *, quiet: bool = False
) -> NoReturn:
    """Follow a job live until it ends, then exit with its outcome (EXIT_CODES)."""
    events = client.stream_job_events(job_id)
    if quiet:
        outcome = connection.call(lambda: render.final_status(events))
    else:
        outcome = connection.call(lambda: render.watch(console, events, connection.as_json))
    sys.exit(EXIT_CODES.get(outcome, 1))


@jobs.command("create")
@connection_options
@click.option("--type", "job_type", required=True, help="job type, e.g. email.send")
@click.option("--payload", default=None, help="JSON, or @file.json")
@click.option("--priority", type=click.IntRange(1, 10), default=None, help="1 (first) .. 10")
@click.option("--agent-task", "agent_task_id", default=None)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=None)
@click.option("--idempotency-key", default=None)
@click.option("--hold", is_flag=True, default=None, help="create PENDING (not claimable yet)")
@click.option(
    "--concurrency-key", default=None, help="the limit it counts against (a customer, an API…)"
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="seconds one attempt may run",
)
@click.option(
    "--watch", is_flag=True, help="then follow it live until it ends (exit codes as `watch`)"
)
@click.option("--quiet", "-q", is_flag=True, help="print only the job's id")
def jobs_create(
    connection: Connection,
    /,
    job_type: str,
    payload: str | None,
    watch: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Create a job (with --watch, then follow it until it ends)."""
    if quiet and connection.as_json:
        raise click.UsageError("--quiet prints only the id: leave out --json")
    body = parse_payload(payload)
    with connection.client() as client:
        job = connection.call(lambda: client.create_job(job_type, body, **options))
        if quiet:
            click.echo(job["id"])
        elif connection.as_json:
            # Watching, the job and then its events are JSON lines, one object a line.
            click.echo(json.dumps(job) if watch else json.dumps(job, indent=2))
        else:
            console.print(f"created job [cyan]{job['id']}[/cyan] ({job['type']}, {job['status']})")
        if watch:
            follow_to_the_end(connection, client, str(job["id"]), quiet=quiet)


@jobs.command("list")
@connection_options
@click.option("--status", multiple=True, help="repeatable: QUEUED, RUNNING, …")
@click.option("--type", "job_type", default=None)
@click.option("--agent-task", "agent_task_id", default=None)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="then print each change as it happens")
def jobs_list(
    connection: Connection,
    status: tuple[str, ...],
    job_type: str | None,
    agent_task_id: str | None,
    page: int,
    limit: int,
    follow: bool,
) -> None:
    """List jobs, newest first (with --follow, keep printing changes until Ctrl-C)."""
    statuses = [s.upper() for s in status]
    with connection.client() as client:
        found = connection.call(
            lambda: client.list_jobs(
                status=statuses,
                job_type=job_type,
                agent_task_id=agent_task_id,
                page=page,
                limit=limit,
            )
        )
        if connection.as_json:
            click.echo(json.dumps(found, indent=2))
            return
        console.print(render.jobs_table(found["data"]))
        meta = found["meta"]
        console.print(
            f"page {meta['page']} of {max(meta['total_pages'], 1)} · "
            f"{render.count(meta['total'], 'job')}",
            style="dim",
        )
        if follow:
            changes = client.stream_workspace_events(
                job_types=[job_type] if job_type else None, statuses=statuses or None
            )
            with contextlib.suppress(KeyboardInterrupt):
                connection.call(lambda: render.follow_changes(console, changes))


@jobs.command("show")
@connection_options
@click.argument("job_id")
def jobs_show(connection: Connection, job_id: str) -> None:
    """Show a job with its steps and events."""
    with connection.client() as client:
        job = connection.call(lambda: client.get_job(job_id))
    if connection.as_json:
        click.echo(json.dumps(job, indent=2))
        return
    render.print_job(console, job)


@jobs.command("cancel")
@connection_options
@click.argument("job_id")
@click.option("--reason", default=None)
def jobs_cancel(connection: Connection, job_id: str, reason: str | None) -> None:
    """Cancel a pending, queued or running job."""
    with connection.client() as client:
        job = connection.call(lambda: client.cancel_job(job_id, reason))
    if connection.as_json:
        click.echo(json.dumps(job, indent=2))
        return
    console.print(f"job [cyan]{job['id']}[/cyan] is {job['status']}")


@jobs.command("retry")
@connection_options
@click.argument("job_id")
def jobs_retry(connection: Connection, job_id: str) -> None:
    """Run a failed or cancelled job again (as a new job)."""
    with connection.client() as client:
        job = connection.call(lambda: client.retry_job(job_id))
    if connection.as_json:
        click.echo(json.dumps(job, indent=2))
        return
    console.print(f"retried as job [cyan]{job['id']}[/cyan] ({job['status']})")


@jobs.command("watch")
@connection_options
@click.argument("job_id")
def jobs_watch(connection: Connection, job_id: str) -> None:
    """Follow a job live until it ends; exit 0 if it COMPLETED, 1 FAILED, 3 CANCELLED
    (with --json: each event as a JSON line)."""
    with connection.client() as client:
        follow_to_the_end(connection, client, job_id)
