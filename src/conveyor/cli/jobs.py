"""`conveyor jobs …`: create, list, show, cancel, retry and watch jobs on a running server."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.text import Text

from conveyor.cli import render
from conveyor.cli.connection import Connection, connection_group_options, connection_options
from conveyor.cli.shared import console, fail
from conveyor.client import Client, CreatedJob
from conveyor.domain.jobs import JobStatus

F = TypeVar("F", bound=Callable[..., Any])

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


def print_made(
    connection: Connection,
    job: CreatedJob,
    idempotency_key: str | None,
    *,
    quiet: bool,
    json_lines: bool = False,
) -> None:
    """What `jobs create` and `schedules trigger` print of the job the server answered: a
    new one, or (an idempotency key used before) the one made then, which the server
    answers instead of making a second. `-q` prints the id either way; `--json` the job
    with `created`, for a script to tell the two apart (one line with `json_lines`)."""
    if quiet:
        click.echo(render.shown(job["id"]).plain)
    elif connection.as_json:
        answer = {**job, "created": job.created}
        click.echo(json.dumps(answer) if json_lines else json.dumps(answer, indent=2))
    else:
        about = render.shown(f" ({job['type']}, {job['status']})")
        made = render.shown(job["id"], "cyan")
        if job.created:
            line = Text.assemble("created job ", made, about)
        else:
            key = f" for idempotency key {idempotency_key}" if idempotency_key else ""
            line = Text.assemble("job ", made, render.shown(f" already exists{key}"), about)
        console.print(line, highlight=False)


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
    "--run-at", default=None, metavar="TIME", help="not before then: ISO 8601, with a zone"
)
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
        # Watching, the job and then its events are JSON lines, one object a line.
        print_made(connection, job, options["idempotency_key"], quiet=quiet, json_lines=watch)
        if watch:
            follow_to_the_end(connection, client, str(job["id"]), quiet=quiet)


def filter_options(command: F) -> F:
    """The list filters, for `jobs list` and the bulk `jobs cancel|retry --all`."""
    for option in reversed(
        (
            click.option("--status", multiple=True, help="repeatable: QUEUED, RUNNING, …"),
            click.option("--type", "job_type", default=None, help="this type exactly"),
            click.option("--type-prefix", default=None, help="types that begin with this"),
            click.option("--agent-task", "agent_task_id", default=None),
            click.option("--concurrency-key", default=None),
            click.option("--worker", "worker_id", default=None, help="run (last) by this worker"),
            click.option("--error-contains", default=None, help="the error holds this text"),
            click.option(
                "--created-after", default=None, metavar="TIME", help="ISO 8601, with a zone"
            ),
            click.option(
                "--created-before", default=None, metavar="TIME", help="ISO 8601, with a zone"
            ),
        )
    ):
        command = option(command)
    return command


def given_filters(options: dict[str, Any]) -> dict[str, Any]:
    """The filter options given (for `Client.list_jobs` and the bulk calls), upper-casing
    statuses; the other options are left in `options`."""
    filters: dict[str, Any] = {}
    for name in FILTER_NAMES:
        value = options.pop(name)
        if name == "status":
            value = [status.upper() for status in value] or None
        if value is not None:
            filters[name] = value
    return filters


FILTER_NAMES = (
    "status",
    "job_type",
    "type_prefix",
    "agent_task_id",
    "concurrency_key",
    "worker_id",
    "error_contains",
    "created_after",
    "created_before",
)


@jobs.command("list")
@connection_options
@filter_options
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--cursor", default=None, help="the cursor the page before printed after `next:` (deep lists)"
)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="then print each change as it happens")
def jobs_list(
    connection: Connection,
    /,
    page: int,
    cursor: str | None,
    limit: int,
    follow: bool,
    **options: Any,
) -> None:
    """List jobs, newest first (with --follow, keep printing changes until Ctrl-C)."""
    filters = given_filters(options)
    with connection.client() as client:
        found = connection.call(
            lambda: client.list_jobs(page=page, cursor=cursor, limit=limit, **filters)
        )
        if connection.printed_json(found):
            return
        console.print(render.jobs_table(found["data"]))
        meta = found["meta"]
        total = render.count(meta["total"], "job")
        if meta.get("total_is_estimate"):
            total = f"about {total}"
        where = (
            f"page {meta['page']} of {max(meta['total_pages'], 1)}"
            if meta.get("page") is not None
            else "by cursor"
        )
        console.print(render.shown(f"{where} · {total}", "dim"), highlight=False)
        following = next_page_options(meta)
        if following:
            console.print(
                render.shown(f"next: {following} (with the same options)", "dim"),
                highlight=False,
            )
        if follow:
            job_type = filters.get("job_type")
            changes = client.stream_workspace_events(
                job_types=[job_type] if job_type else None, statuses=filters.get("status")
            )
            with contextlib.suppress(KeyboardInterrupt):
                connection.call(lambda: render.follow_changes(console, changes))


def next_page_options(meta: dict[str, Any]) -> str | None:
    """The options that list the page after this one (None: nothing follows, as the
    server's `meta.next_cursor` says): its cursor, and its number when paging by number."""
    next_cursor = meta.get("next_cursor")
    if not next_cursor:
        return None
    if meta.get("page") is None:
        return f"--cursor {next_cursor}"
    return f"--page {meta['page'] + 1} or --cursor {next_cursor}"


@jobs.command("show")
@connection_options
@click.argument("job_id")
def jobs_show(connection: Connection, job_id: str) -> None:
    """Show a job with its steps and events."""
    with connection.client() as client:
        job = connection.call(lambda: client.get_job(job_id))
    if connection.printed_json(job):
        return
    render.print_job(console, job)


def bulk(
    connection: Connection,
    action: str,
    filters: dict[str, Any],
    *,
    yes: bool,
    reason: str | None = None,
) -> None:
    """Cancel or retry every job the filters match (every one with no filter), after
    saying how many and asking, unless --yes."""
    what = {
        "cancel": ("Cancel", "pending, queued or running", "cancelled"),
        "retry": ("Run again", "failed or cancelled (not run again yet)", "run again"),
    }[action]
    with connection.client() as client:
        call = client.bulk_cancel if action == "cancel" else client.bulk_retry
        options: dict[str, Any] = {"everything": not filters, **filters}
        if reason is not None:
            options["reason"] = reason
        if not yes:
            counted = connection.call(lambda: call(dry_run=True, **options))
            matching = counted["remaining"]
            about = "about " if counted["remaining_is_estimate"] else ""
            if not matching:
                console.print(f"no {what[1]} job matches")
                return
            click.confirm(
                f"{what[0]} {about}{render.count(matching, 'job')} ({what[1]}, matching "
                f"{render.shown(_describe(filters)).plain})?",
                abort=True,
                err=True,
            )
        done = connection.call(lambda: call(**options))
    if connection.printed_json(done):
        return
    if not done["matched"]:
        console.print(f"no {what[1]} job matches")
        return
    skipped = done["matched"] - done["changed"]
    line = f"{what[2]} {render.count(done['changed'], 'job')}"
    if skipped:
        line += f"; {skipped} had changed meanwhile and were left as they were"
    console.print(line)


def _describe(filters: dict[str, Any]) -> str:
    if not filters:
        return "everything in the workspace"
    return " ".join(
        f"{name.replace('job_type', 'type')}={','.join(v) if isinstance(v, list) else v}"
        for name, v in filters.items()
    )


def _single_or_bulk(job_id: str | None, every: bool, filters: dict[str, Any]) -> bool:
    """Whether the command is a bulk one; refuses a mix of both forms."""
    if job_id is not None and (every or filters):
        raise click.UsageError("give a JOB_ID, or --all with filters, not both")
    if job_id is None and not every:
        raise click.UsageError(
            "give a JOB_ID, or --all (with filters such as --status, --type) for many jobs"
        )
    if filters and not every:
        raise click.UsageError("filters select many jobs: add --all")
    return job_id is None


@jobs.command("cancel")
@connection_options
@click.argument("job_id", required=False)
@click.option("--reason", default=None)
@click.option("--all", "every", is_flag=True, help="every job the filters match")
@filter_options
@click.option("--yes", "-y", is_flag=True, help="do not ask (with --all)")
def jobs_cancel(
    connection: Connection,
    /,
    job_id: str | None,
    reason: str | None,
    every: bool,
    yes: bool,
    **options: Any,
) -> None:
    """Cancel a pending, queued or running job; or, with --all, every one the filters
    match (asking first, saying how many, unless --yes)."""
    filters = given_filters(options)
    if _single_or_bulk(job_id, every, filters):
        bulk(connection, "cancel", filters, yes=yes, reason=reason)
        return
    assert job_id is not None
    with connection.client() as client:
        job = connection.call(lambda: client.cancel_job(job_id, reason))
    if connection.printed_json(job):
        return
    console.print(
        Text.assemble("job ", render.shown(job["id"], "cyan"), " is ", render.shown(job["status"])),
        highlight=False,
    )


@jobs.command("retry")
@connection_options
@click.argument("job_id", required=False)
@click.option("--all", "every", is_flag=True, help="every job the filters match")
@filter_options
@click.option("--yes", "-y", is_flag=True, help="do not ask (with --all)")
def jobs_retry(
    connection: Connection, /, job_id: str | None, every: bool, yes: bool, **options: Any
) -> None:
    """Run a failed or cancelled job again (as a new job); or, with --all, every one the
    filters match that was not run again yet (asking first, unless --yes)."""
    filters = given_filters(options)
    if _single_or_bulk(job_id, every, filters):
        bulk(connection, "retry", filters, yes=yes)
        return
    assert job_id is not None
    with connection.client() as client:
        job = connection.call(lambda: client.retry_job(job_id))
    if connection.printed_json(job):
        return
    console.print(
        Text.assemble(
            "retried as job ",
            render.shown(job["id"], "cyan"),
            render.shown(f" ({job['status']})"),
        ),
        highlight=False,
    )


@jobs.command("watch")
@connection_options
@click.argument("job_id")
def jobs_watch(connection: Connection, job_id: str) -> None:
    """Follow a job live until it ends; exit 0 if it COMPLETED, 1 FAILED, 3 CANCELLED
    (with --json: each event as a JSON line)."""
    with connection.client() as client:
        follow_to_the_end(connection, client, job_id)
