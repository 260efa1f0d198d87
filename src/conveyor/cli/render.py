"""Tables and panels the CLI prints."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from conveyor.domain.workspaces import ApiKey, Workspace

STATUS_STYLE = {
    "PENDING": "grey62",
    "QUEUED": "cyan",
    "RUNNING": "yellow",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
    "SKIPPED": "grey62",
}


def status_text(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def ago(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    moment = datetime.fromisoformat(timestamp)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{max(int(seconds), 0)}s ago"


def jobs_table(jobs: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "TYPE", "STATUS", "PRI", "PROGRESS", "ATTEMPT", "CREATED", "AGENT TASK"):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        table.add_row(
            str(job["id"]),
            job["type"],
            status_text(job["status"]),
            str(job["priority"]),
            f"{job['progress_percent']}%",
            f"{job['attempt']}/{job['max_attempts']}",
            ago(job["created_at"]),
            job.get("agent_task_id") or "-",
        )
    return table


def print_job(console: Console, job: dict[str, Any]) -> None:
    console.print(f"[bold]Job {job['id']}[/bold]  {status_text(job['status'])}")
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    for label, value in (
        ("type", job["type"]),
        ("priority", job["priority"]),
        ("progress", f"{job['progress_percent']}%"),
        ("attempt", f"{job['attempt']} of {job['max_attempts']}"),
        ("worker", job.get("worker_id") or "-"),
        ("agent task", job.get("agent_task_id") or "-"),
        ("retry of", job.get("retry_of") or "-"),
        ("created", job["created_at"]),
        ("started", job.get("started_at") or "-"),
        ("completed", job.get("completed_at") or "-"),
        ("version", job["version"]),
        ("payload", json.dumps(job["payload"], ensure_ascii=False)),
        (
            "result",
            json.dumps(job["result"], ensure_ascii=False) if job.get("result") is not None else "-",
        ),
        ("error", job.get("error") or "-"),
    ):
        facts.add_row(label, str(value))
    console.print(facts)
    if job.get("steps"):
        steps = Table(title="steps", box=None, header_style="bold", title_justify="left")
        for column in ("#", "NAME", "PHASE", "TYPE", "STATUS", "DURATION", "TOKENS IN/OUT"):
            steps.add_column(column)
        for step in job["steps"]:
            duration = f"{step['duration_ms']} ms" if step.get("duration_ms") is not None else "-"
            tokens = (
                f"{step.get('tokens_input') or 0}/{step.get('tokens_output') or 0}"
                if step.get("tokens_input") is not None or step.get("tokens_output") is not None
                else "-"
            )
            steps.add_row(
                str(step["ordinal"]),
                step["name"],
                step["phase"],
                step["type"],
                status_text(step["status"]),
                duration,
                tokens,
            )
        console.print(steps)
    if job.get("events"):
        events = Table(title="events", box=None, header_style="bold", title_justify="left")
        for column in ("SEQ", "TIME", "TYPE", "ACTOR", "PAYLOAD"):
            events.add_column(column)
        for event in job["events"]:
            events.add_row(
                str(event["seq"]),
                event["timestamp"][11:23],
                event["type"],
                event["actor"],
                json.dumps(event["payload"], ensure_ascii=False)[:80],
            )
        console.print(events)


def workspaces_table(workspaces: Sequence[Workspace]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "ID", "CREATED"):
        table.add_column(column)
    for found in workspaces:
        table.add_row(found.slug, str(found.id), found.created_at.isoformat(timespec="seconds"))
    return table


def keys_table(keys: Sequence[ApiKey]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("ID", "ROLE", "NAME", "CREATED", "REVOKED"):
        table.add_column(column)
    for found in keys:
        table.add_row(
            str(found.id),
            found.role.value,
            found.name or "-",
            found.created_at.isoformat(timespec="seconds"),
            found.revoked_at.isoformat(timespec="seconds") if found.revoked_at else "-",
        )
    return table


def describe(event: dict[str, Any]) -> str:
    payload = event.get("payload") or {}
    kind = event["type"]
    if kind == "job.progress":
        message = payload.get("message")
        return f"{payload.get('progress_percent')}%" + (f" {message}" if message else "")
    if kind == "step.output":
        return str(payload.get("text", "")).rstrip()
    if kind.startswith("step."):
        return str(payload.get("name", ""))
    if kind in ("job.failed", "job.retrying"):
        return str(payload.get("error", ""))
    if kind == "job.started":
        return f"attempt {payload.get('attempt')} on {payload.get('worker_id')}"
    return json.dumps(payload, ensure_ascii=False)[:100] if payload else ""


def watch(console: Console, events: Iterable[dict[str, Any]], as_json: bool) -> str:
    """Print a job's events as they come, with a progress bar; return its final status."""
    if as_json:
        status = "UNKNOWN"
        for event in events:
            print(json.dumps(event), flush=True)
            if event["type"] == "stream.complete":
                status = str(event["status"])
        return status
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("waiting", total=100)
        for event in events:
            if event["type"] == "stream.complete":
                status = str(event["status"])
                progress.update(bar, description=status_text(status))
                if status == "COMPLETED":
                    progress.update(bar, completed=100)
                return status
            time = str(event.get("timestamp", ""))[11:23]
            # Text, not markup: output from a job may hold brackets of its own.
            line = Text.assemble(
                (f"{event.get('seq', ''):>4} {time} ", "dim"),
                f"{event['type']:<16} ",
                describe(event),
            )
            progress.console.print(line, highlight=False)
            if event["type"] == "job.progress":
                progress.update(bar, completed=event["payload"].get("progress_percent", 0))
            if event["type"] == "job.started":
                progress.update(bar, description="RUNNING")
    return "UNKNOWN"


STATUS_EVENTS = {
    "job.created": "CREATED",
    "job.queued": "QUEUED",
    "job.started": "RUNNING",
    "job.completed": "COMPLETED",
    "job.failed": "FAILED",
    "job.cancelled": "CANCELLED",
    "job.retrying": "RETRYING",
    "job.lease_expired": "LEASE EXPIRED",
}


def follow_changes(console: Console, events: Iterable[dict[str, Any]]) -> None:
    """One line per status change, as `kubectl get -w` does."""
    for event in events:
        change = STATUS_EVENTS.get(event["type"])
        if change is None:
            continue
        time = str(event.get("timestamp", ""))[11:19]
        console.print(
            Text.assemble(
                (f"{time} ", "dim"),
                f"{event['job_id']}  {event.get('job_type', ''):<20} ",
                (change, STATUS_STYLE.get(change, "white")),
            ),
            highlight=False,
        )


def print_status(console: Console, stats: dict[str, Any]) -> None:
    by_status = stats["by_status"]
    summary = Table(box=None, header_style="bold", pad_edge=False)
    for status in by_status:
        summary.add_column(status, justify="right")
    summary.add_row(*(str(count) for count in by_status.values()))
    console.print(summary)
    age = stats.get("oldest_queued_age_seconds")
    console.print(
        "oldest queued job: " + ("-" if age is None else f"{age:.1f}s waiting"), style="dim"
    )
    types: dict[str, dict[str, int]] = {}
    for row in stats["counts"]:
        types.setdefault(row["type"], {})[row["status"]] = row["count"]
    if types:
        by_type = Table(title="by type", title_justify="left", box=None, header_style="bold")
        by_type.add_column("TYPE")
        for status in by_status:
            by_type.add_column(status, justify="right")
        for job_type, counts in sorted(types.items()):
            by_type.add_row(job_type, *(str(counts.get(status, 0)) for status in by_status))
        console.print(by_type)
    workers = Table(title="workers", title_justify="left", box=None, header_style="bold")
    for column in ("WORKER", "LAST SEEN", "RUNNING"):
        workers.add_column(column)
    for worker in stats["workers"]:
        workers.add_row(worker["worker_id"], ago(worker["last_seen_at"]), str(worker["running"]))
    if not stats["workers"]:
        workers.add_row("(none in the last hour)", "", "")
    console.print(workers)
