"""`conveyor schedules …`: create, list, show, pause, resume, trigger and delete schedules
(cron rules that create jobs) on a running server. A schedule is named by its name or id."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from conveyor.cli import render
from conveyor.cli.connection import Connection, connection_group_options, connection_options
from conveyor.cli.jobs import next_page_options, parse_payload, print_made
from conveyor.cli.shared import console
from conveyor.domain.schedules import DEFAULT_RUNS_LISTED, MAX_RUNS_LISTED, MAX_SCHEDULES_LISTED


@click.group()
@connection_group_options
def schedules() -> None:
    """Create, list, show, pause, resume, trigger and delete schedules."""


def _moment(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    return timestamp.replace("+00:00", "Z").replace("T", " ")


def _state(schedule: dict[str, Any]) -> Text:
    return Text("paused", "yellow") if schedule["paused"] else Text("active", "green")


def schedules_table(found: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "CRON", "TIMEZONE", "JOB TYPE", "NEXT RUN (UTC)", "LAST RUN", "STATE"):
        table.add_column(column, no_wrap=True)
    for schedule in found:
        table.add_row(
            render.shown(schedule["name"]),
            render.shown(schedule["cron"]),
            render.shown(schedule["timezone"]),
            render.shown(schedule["job"]["type"]),
            render.shown(_moment(schedule["next_run_at"])),
            render.ago(schedule["last_run_at"]) if schedule["last_run_at"] else "-",
            _state(schedule),
        )
    return table


def print_schedule(out: Console, schedule: dict[str, Any], runs: Sequence[dict[str, Any]]) -> None:
    title = Text.assemble(
        render.shown(f"Schedule {schedule['name']}", "bold"),
        "  ",
        _state(schedule),
        "  ",
        render.shown(schedule["id"], "dim"),
    )
    out.print(title, highlight=False)
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    job = schedule["job"]
    skipped = schedule["last_skipped_at"]
    # The job's optional fields, only when set, labelled as `jobs show` labels them.
    job_options: list[tuple[str, str]] = []
    if job.get("timeout_seconds") is not None:
        job_options.append(("timeout", render.seconds_text(job["timeout_seconds"])))
    if job.get("concurrency_key"):
        job_options.append(("concurrency key", job["concurrency_key"]))
    for label, value in (
        ("cron", f"{schedule['cron']}  ({schedule['timezone']})"),
        ("job", f"{job['type']}  priority {job['priority']}, attempts {job['max_attempts']}"),
        ("payload", json.dumps(job["payload"])),
        *job_options,
        ("overlap", schedule["overlap"]),
        ("catch up", schedule["catch_up"]),
        ("next runs", ", ".join(_moment(t) for t in schedule["upcoming"]) or "-"),
        ("last run", _moment(schedule["last_run_at"])),
        ("last job", schedule["last_job_id"] or "-"),
        (
            "last skipped",
            f"{_moment(skipped)} ({schedule['last_skip_reason']})" if skipped else "-",
        ),
    ):
        facts.add_row(label, render.shown(value))
    out.print(facts)
    if runs:
        out.print(runs_table(runs))


def runs_table(runs: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    for column in ("TICK (UTC)", "OUTCOME", "JOB", "STATUS"):
        table.add_column(column, no_wrap=True)
    for run in runs:
        status = run["job_status"]
        table.add_row(
            render.shown(_moment(run["tick"]) if run["tick"] else "(triggered)"),
            render.shown(run["outcome"]),
            render.shown(run["job_id"] or "-"),
            render.status_text(status) if status else "-",
        )
    return table


@schedules.command("create")
@connection_options
@click.argument("name")
@click.option("--cron", required=True, help='5 fields or @hourly/@daily…, e.g. "*/5 * * * *"')
@click.option("--type", "job_type", required=True, help="the type of the job each tick makes")
@click.option("--payload", default=None, help="JSON, or @file.json")
@click.option("--timezone", default=None, help="IANA time zone (default UTC)")
@click.option("--priority", type=click.IntRange(1, 10), default=None)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=None)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="seconds one attempt may run",
)
@click.option("--concurrency-key", default=None)
@click.option(
    "--overlap",
    type=click.Choice(["allow", "skip"]),
    default=None,
    help="skip: skip a tick while the previous run is unfinished",
)
@click.option(
    "--catch-up",
    type=click.Choice(["none", "latest"]),
    default=None,
    help="ticks missed while no server ran: none (skip) or latest (run the last once)",
)
@click.option("--paused", is_flag=True, default=None, help="create it paused")
@click.option("--quiet", "-q", is_flag=True, help="print only the schedule's id")
def schedules_create(
    connection: Connection,
    /,
    name: str,
    cron: str,
    job_type: str,
    payload: str | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Create a schedule NAME that makes a job at every tick of --cron."""
    body = parse_payload(payload)
    with connection.client() as client:
        schedule = connection.call(
            lambda: client.create_schedule(name, cron, job_type, body, **options)
        )
    if quiet:
        click.echo(render.shown(schedule["id"]).plain)
    elif connection.as_json:
        click.echo(json.dumps(schedule, indent=2))
    else:
        console.print(
            Text.assemble(
                "created schedule ",
                render.shown(schedule["name"], "cyan"),
                render.shown(f" ({schedule['id']}); next run {_moment(schedule['next_run_at'])}"),
            ),
            highlight=False,
        )


@schedules.command("list")
@connection_options
@click.option(
    "--page-size",
    type=click.IntRange(1, MAX_SCHEDULES_LISTED),
    default=MAX_SCHEDULES_LISTED,
    show_default=True,
    help="schedules read per request (all are listed)",
)
def schedules_list(connection: Connection, page_size: int) -> None:
    """List every schedule of the workspace, by name, with their next runs."""
    with connection.client() as client:
        found = connection.call(lambda: client.list_schedules(limit=page_size))
    if connection.printed_json(found):
        return
    console.print(schedules_table(found))
    console.print(render.count(len(found), "schedule"), style="dim")


@schedules.command("show")
@connection_options
@click.argument("schedule")
@click.option("--runs", type=click.IntRange(0, 200), default=10, show_default=True)
def schedules_show(connection: Connection, schedule: str, runs: int) -> None:
    """Show a schedule, its next runs and what its last ticks did."""
    with connection.client() as client:
        found = connection.call(lambda: client.get_schedule(schedule))
        history = connection.call(lambda: client.schedule_runs(schedule, runs)) if runs else None
    if connection.printed_json({**found, "runs": history or []}):
        return
    print_schedule(console, found, history or [])
    if history is not None and history.next_cursor:
        console.print(
            f"older runs: conveyor schedules runs {schedule} --cursor {history.next_cursor}",
            style="dim",
            highlight=False,
        )


@schedules.command("runs")
@connection_options
@click.argument("schedule")
@click.option(
    "--cursor", default=None, help="the cursor the page before printed after `next:` (older runs)"
)
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_RUNS_LISTED),
    default=DEFAULT_RUNS_LISTED,
    show_default=True,
)
def schedules_runs(connection: Connection, schedule: str, cursor: str | None, limit: int) -> None:
    """What a schedule's ticks and triggers did, newest first, a page at a time."""
    with connection.client() as client:
        found = connection.call(lambda: client.schedule_runs(schedule, limit, cursor=cursor))
    meta = {"limit": limit, "next_cursor": found.next_cursor}
    if connection.printed_json({"schedule_id": found.schedule_id, "data": found, "meta": meta}):
        return
    if found:
        console.print(runs_table(found))
    where = "by cursor" if cursor else "newest first"
    console.print(f"{render.count(len(found), 'run')}, {where}", style="dim")
    following = next_page_options(meta)
    if following:
        console.print(f"next: {following} (with the same options)", style="dim", highlight=False)


def _set_paused(connection: Connection, schedule: str, paused: bool) -> None:
    with connection.client() as client:
        changed = connection.call(lambda: client.update_schedule(schedule, paused=paused))
    if connection.as_json:
        click.echo(json.dumps(changed, indent=2))
    else:
        said = " is paused" if paused else f" resumed; next run {_moment(changed['next_run_at'])}"
        console.print(
            Text.assemble("schedule ", render.shown(changed["name"], "cyan"), render.shown(said)),
            highlight=False,
        )


@schedules.command("pause")
@connection_options
@click.argument("schedule")
def schedules_pause(connection: Connection, schedule: str) -> None:
    """Stop a schedule firing (until resumed)."""
    _set_paused(connection, schedule, True)


@schedules.command("resume")
@connection_options
@click.argument("schedule")
def schedules_resume(connection: Connection, schedule: str) -> None:
    """Fire again from the next tick (ticks missed while paused do not run)."""
    _set_paused(connection, schedule, False)


@schedules.command("trigger")
@connection_options
@click.argument("schedule")
@click.option(
    "--idempotency-key", default=None, help="the same key again gives the same job, not a new one"
)
@click.option("--quiet", "-q", is_flag=True, help="print only the job's id")
def schedules_trigger(
    connection: Connection, schedule: str, idempotency_key: str | None, quiet: bool
) -> None:
    """Run now: create the schedule's job at once."""
    with connection.client() as client:
        job = connection.call(lambda: client.trigger_schedule(schedule, idempotency_key))
    print_made(connection, job, idempotency_key, quiet=quiet)


@schedules.command("delete")
@connection_options
@click.argument("schedule")
def schedules_delete(connection: Connection, schedule: str) -> None:
    """Delete a schedule (the jobs it made stay)."""
    with connection.client() as client:
        connection.call(lambda: client.delete_schedule(schedule))
    if connection.as_json:
        click.echo(json.dumps({"deleted": schedule}))
    else:
        console.print(
            Text.assemble("deleted schedule ", render.shown(schedule, "cyan")), highlight=False
        )
