"""Tables and panels the CLI prints."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from conveyor.client.http import END_OF_STREAM
from conveyor.domain import events as event_types
from conveyor.domain.capacity import UNPRINTABLE
from conveyor.domain.jobs import JobStatus
from conveyor.domain.status import LEASED_STATUS, STATUS_OF_EVENT, UNFINISHED_STATUSES
from conveyor.domain.workspaces import ApiKey, Workspace

_INVISIBLE: Final = re.compile(f"[{UNPRINTABLE}]")
_INVISIBLE_BUT_LINES: Final = re.compile(f"(?![\t\n])[{UNPRINTABLE}]")


def _written_out(character: re.Match[str]) -> str:
    code = ord(character.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(value: object, style: str = "", *, lines: bool = False) -> Text:
    """A value the server (or the user) gave, as the CLI prints it: text, never markup
    (`[b]` stays `[b]`), with each control character (C0, DEL, C1: ESC and CSI begin the
    sequences that recolour, retitle or rewrite a terminal; CR overwrites a line) and each
    bidirectional override or isolate (U+202A..U+202E, U+2066..U+2069: they reorder what
    is shown) written out as an escape, `\\x1b` or `\\u202e`. With `lines`, line breaks and
    tabs stay as they are: free text of many lines (an error, a step's output). Every
    string of a table cell or a line the CLI prints from a job, a limit, a key, a worker,
    an event or an error goes through here."""
    pattern = _INVISIBLE_BUT_LINES if lines else _INVISIBLE
    return Text(pattern.sub(_written_out, str(value)), style=style)


STATUS_STYLE = {
    "PENDING": "grey62",
    "QUEUED": "cyan",
    "RUNNING": "yellow",
    "COMPLETED": "green",
    "FAILED": "red",
    "CANCELLED": "magenta",
    "SKIPPED": "grey62",
}


def count(number: int, noun: str) -> str:
    """The number and the noun, singular for one: 1 job, 2 jobs, 0 jobs."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def status_text(status: str) -> Text:
    return shown(status, STATUS_STYLE.get(status, "white"))


def status_markup(status: str) -> str:
    """A status as markup, for the progress bar's description (a markup template)."""
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(shown(status).plain)}[/]"


def span(seconds: float) -> str:
    """A length of time in its largest whole unit: 3d, 5h, 12m, 40s."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def ago(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    moment = datetime.fromisoformat(timestamp)
    return f"{span((datetime.now(UTC) - moment).total_seconds())} ago"


NOT_STARTED_STATUSES = frozenset(status.value for status in UNFINISHED_STATUSES - {LEASED_STATUS})
"""PENDING and QUEUED: a job that may still be waiting for its run_at."""


def not_due_for(job: dict[str, Any]) -> str | None:
    """How long until a job that has not started comes due ("3d"), or None when its run_at
    has come (or it started): claims pass over a queued job until then."""
    run_at = job.get("run_at")
    if not run_at or job["status"] not in NOT_STARTED_STATUSES:
        return None
    seconds = (datetime.fromisoformat(run_at) - datetime.now(UTC)).total_seconds()
    return span(seconds) if seconds > 0 else None


def jobs_table(jobs: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "TYPE", "STATUS", "PRI", "PROGRESS", "ATTEMPT", "CREATED", "AGENT TASK"):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        due_in = not_due_for(job)
        status = status_text(job["status"])
        table.add_row(
            shown(job["id"]),
            shown(job["type"]),
            status if due_in is None else Text.assemble(status, (f" due in {due_in}", "dim")),
            shown(job["priority"]),
            shown(f"{job['progress_percent']}%"),
            shown(f"{job['attempt']}/{job['max_attempts']}"),
            ago(job["created_at"]),
            shown(job.get("agent_task_id") or "-"),
        )
    return table


def seconds_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:g} s"


def due_text(job: dict[str, Any]) -> str:
    """A job's run_at, the moment claims may take it, and how far off while it waits for
    it: "2027-01-01T00:00:00+00:00 (in 412d)". Always printed: the API does not say
    whether run_at was asked for (left out, it is the moment of creation) and a retry's
    backoff moves it."""
    run_at = job.get("run_at")
    if not run_at:
        return "-"
    due_in = not_due_for(job)
    return run_at if due_in is None else f"{run_at} (in {due_in})"


def print_job(console: Console, job: dict[str, Any]) -> None:
    console.print(
        Text.assemble(shown(f"Job {job['id']}", "bold"), "  ", status_text(job["status"])),
        highlight=False,
    )
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    for label, value in (
        ("type", job["type"]),
        ("priority", job["priority"]),
        ("progress", f"{job['progress_percent']}%"),
        ("attempt", f"{job['attempt']} of {job['max_attempts']}"),
        ("timeout", seconds_text(job.get("timeout_seconds"))),
        ("worker", job.get("worker_id") or "-"),
        ("agent task", job.get("agent_task_id") or "-"),
        ("concurrency key", job.get("concurrency_key") or "-"),
        ("retry of", job.get("retry_of") or "-"),
        ("created", job["created_at"]),
        ("due", due_text(job)),
        ("started", job.get("started_at") or "-"),
        ("completed", job.get("completed_at") or "-"),
        ("version", job["version"]),
        ("payload", json.dumps(job["payload"], ensure_ascii=False)),
        (
            "result",
            json.dumps(job["result"], ensure_ascii=False) if job.get("result") is not None else "-",
        ),
    ):
        facts.add_row(label, shown(value))
    facts.add_row("error", shown(job.get("error") or "-", lines=True))
    console.print(facts)
    for limit in job.get("waiting_for") or []:
        console.print(shown(waiting_text(limit), "yellow"), highlight=False)
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
                shown(step["ordinal"]),
                shown(step["name"]),
                shown(step["phase"]),
                shown(step["type"]),
                status_text(step["status"]),
                shown(duration),
                shown(tokens),
            )
        console.print(steps)
    if job.get("events"):
        events = Table(title="events", box=None, header_style="bold", title_justify="left")
        for column in ("SEQ", "TIME", "TYPE", "ACTOR", "PAYLOAD"):
            events.add_column(column)
        for event in job["events"]:
            events.add_row(
                shown(event["seq"]),
                shown(event["timestamp"][11:23]),
                shown(event["type"]),
                shown(event["actor"]),
                shown(json.dumps(event["payload"], ensure_ascii=False)[:80]),
            )
        console.print(events)


def rate_text(rate: dict[str, Any] | None) -> str:
    """A limit's rate as people say it: "10 per 60 s" ("-" for none)."""
    if not rate:
        return "-"
    return f"{rate['count']} per {seconds_text(float(rate['per_seconds']))}"


def why_text(limit: dict[str, Any], reason: str | None) -> str:
    """Why a limit lets none of its jobs start: "8/8 running", "paused", "rate: 10 per
    60 s"."""
    if reason == "paused":
        return "paused"
    if reason == "full":
        return f"{limit['running']}/{limit['max_running']} running"
    if reason == "rate":
        return f"rate: {rate_text(limit.get('rate'))}"
    return str(reason or "-")


def waiting_text(limit: dict[str, Any]) -> str:
    """A line of `jobs show` for a limit that holds the job back (an item of
    `waiting_for`): "waiting for limit openai: 8/8 running"."""
    return f"waiting for limit {limit['name']}: {why_text(limit, limit.get('reason'))}"


LIMIT_NAME_WIDTH: Final = 40
"""The most columns `limits list` gives a limit's name (names run to 200 characters): one
longer is cut short with an ellipsis on its one line, as job types are when a table is
too wide, so one long name neither widens the column for every row nor wraps the table."""


def limits_table(limits: Sequence[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "RUNNING", "QUEUED", "RATE", "STARTED IN WINDOW", "PAUSED", "WAITING"):
        # The name is the column that gives way on a narrow terminal (cut, never wrapped).
        if column == "NAME":
            table.add_column(column, max_width=LIMIT_NAME_WIDTH)
        else:
            table.add_column(column, no_wrap=True)
    if any(shown(limit["name"]).cell_len > LIMIT_NAME_WIDTH for limit in limits):
        table.caption = "names cut short (…) are whole in `limits list --json`"
        table.caption_justify = "left"
    for limit in limits:
        maximum = limit.get("max_running")
        reason = limit.get("waiting_because")
        name = shown(limit["name"])
        name.no_wrap, name.overflow = True, "ellipsis"
        table.add_row(
            name,
            shown(f"{limit['running']}/{'-' if maximum is None else maximum}"),
            shown(limit["queued"]),
            shown(rate_text(limit.get("rate"))),
            shown(limit["started_in_window"] if limit.get("rate") else "-"),
            "yes" if limit["paused"] else "no",
            shown(why_text(limit, reason) if reason else "-", "yellow" if reason else ""),
        )
    if not limits:
        table.add_row("(no limits: every job may start)")
    return table


def print_limit(console: Console, limit: dict[str, Any]) -> None:
    facts = Table(box=None, show_header=False, pad_edge=False)
    facts.add_column(style="dim")
    facts.add_column()
    maximum = limit.get("max_running")
    rate = limit.get("rate")
    reason = limit.get("waiting_because")
    for label, value in (
        ("limit", limit["name"]),
        ("running", str(limit["running"])),
        ("max running", "no cap" if maximum is None else str(maximum)),
        ("queued", str(limit["queued"])),
        ("rate", "no cap" if not rate else rate_text(rate)),
        ("started in window", str(limit["started_in_window"]) if rate else "-"),
        ("paused", "yes" if limit["paused"] else "no"),
        ("waiting", f"none may start: {why_text(limit, reason)}" if reason else "no"),
        ("updated", limit.get("updated_at") or "-"),
    ):
        facts.add_row(label, shown(value))
    console.print(facts)


def workspaces_table(workspaces: Sequence[Workspace]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("NAME", "ID", "WEIGHT", "CREATED"):
        table.add_column(column, justify="right" if column == "WEIGHT" else "left")
    for found in workspaces:
        table.add_row(
            shown(found.slug),
            shown(found.id),
            shown(found.weight),
            found.created_at.isoformat(timespec="seconds"),
        )
    return table


def keys_table(keys: Sequence[ApiKey]) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("ID", "ROLE", "NAME", "CREATED", "REVOKED"):
        table.add_column(column)
    for found in keys:
        table.add_row(
            shown(found.id),
            shown(found.role.value),
            shown(found.name or "-"),
            found.created_at.isoformat(timespec="seconds"),
            found.revoked_at.isoformat(timespec="seconds") if found.revoked_at else "-",
        )
    return table


def describe(event: dict[str, Any]) -> str:
    payload = event.get("payload") or {}
    kind = event["type"]
    if kind == event_types.JOB_PROGRESS:
        message = payload.get("message")
        return f"{payload.get('progress_percent')}%" + (f" {message}" if message else "")
    if kind == event_types.STEP_OUTPUT:
        return str(payload.get("text", "")).rstrip()
    if kind.startswith("step."):
        return str(payload.get("name", ""))
    if kind in (event_types.JOB_FAILED, event_types.JOB_RETRYING):
        return str(payload.get("error", ""))
    if kind == event_types.JOB_STARTED:
        return f"attempt {payload.get('attempt')} on {payload.get('worker_id')}"
    if kind == event_types.JOB_TIMED_OUT:
        return (
            f"attempt {payload.get('attempt')} ran past "
            f"{seconds_text(payload.get('timeout_seconds'))}"
        )
    return json.dumps(payload, ensure_ascii=False)[:100] if payload else ""


def final_status(events: Iterable[dict[str, Any]]) -> str:
    """Wait, printing nothing, for the end of a job's events; return its final status."""
    for event in events:
        if event["type"] == END_OF_STREAM:
            return str(event["status"])
    return "UNKNOWN"


def watch(console: Console, events: Iterable[dict[str, Any]], as_json: bool) -> str:
    """Print a job's events as they come, with a progress bar; return its final status."""
    if as_json:
        status = "UNKNOWN"
        for event in events:
            print(json.dumps(event), flush=True)
            if event["type"] == END_OF_STREAM:
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
            if event["type"] == END_OF_STREAM:
                status = str(event["status"])
                progress.update(bar, description=status_markup(status))
                if status == JobStatus.COMPLETED.value:
                    progress.update(bar, completed=100)
                return status
            time = str(event.get("timestamp", ""))[11:23]
            # Text, not markup: output from a job may hold brackets of its own.
            line = Text.assemble(
                shown(f"{event.get('seq', ''):>4} {time} ", "dim"),
                shown(f"{event['type']:<16} "),
                shown(describe(event), lines=True),
            )
            progress.console.print(line, highlight=False)
            if event["type"] == event_types.JOB_PROGRESS:
                progress.update(bar, completed=event["payload"].get("progress_percent", 0))
            if event["type"] == event_types.JOB_STARTED:
                progress.update(bar, description=status_markup(JobStatus.RUNNING.value))
    return "UNKNOWN"


# Display only: how `jobs list --follow` names changes that say more than the new status.
CHANGE_WORDS = {
    event_types.JOB_CREATED: "CREATED",
    event_types.JOB_RETRYING: "RETRYING",
    event_types.JOB_LEASE_EXPIRED: "LEASE EXPIRED",
    event_types.JOB_TIMED_OUT: "TIMED OUT",
}


def change_word(event_type: str) -> str | None:
    """What `jobs list --follow` prints for an event, or None when it changed no status."""
    if event_type in CHANGE_WORDS:
        return CHANGE_WORDS[event_type]
    status = STATUS_OF_EVENT.get(event_type)
    return None if status is None else status.value


def follow_changes(console: Console, events: Iterable[dict[str, Any]]) -> None:
    """One line per status change, as `kubectl get -w` does."""
    for event in events:
        change = change_word(event["type"])
        if change is None:
            continue
        time = str(event.get("timestamp", ""))[11:19]
        console.print(
            Text.assemble(
                shown(f"{time} ", "dim"),
                shown(f"{event['job_id']}  {event.get('job_type', ''):<20} "),
                shown(change, STATUS_STYLE.get(change, "white")),
            ),
            highlight=False,
        )


THROUGHPUT_WINDOWS = ((1, "last 1 min"), (15, "last 15 min"), (60, "last 60 min"))
WORKER_STATE_STYLE = {"active": "green", "stopped": "grey62"}


def throughput_table(minutes: Sequence[dict[str, Any]], now: datetime | None = None) -> Table:
    """Jobs finished in the last 1, 15 and 60 minutes, from the stats' per-minute counts.
    A minute counts when any of it falls inside the window, so a job that finished a few
    seconds ago, just before the minute turned, is in "last 1 min" too."""
    now = now or datetime.now(UTC)
    table = Table(title="throughput", title_justify="left", box=None, header_style="bold")
    table.add_column("FINISHED")
    outcomes = ("completed", "failed", "cancelled")
    for outcome in outcomes:
        table.add_column(outcome.upper(), justify="right")
    for window, label in THROUGHPUT_WINDOWS:
        inside = [
            row
            for row in minutes
            if (now - datetime.fromisoformat(row["minute"])).total_seconds() < (window + 1) * 60
        ]
        table.add_row(label, *(str(sum(row[outcome] for row in inside)) for outcome in outcomes))
    return table


def workers_table(workers: Sequence[dict[str, Any]]) -> Table:
    """Workers seen in the last hour; their state and job types when the server says."""
    table = Table(title="workers", title_justify="left", box=None, header_style="bold")
    with_state = any("state" in worker for worker in workers)
    with_types = any("types" in worker for worker in workers)
    table.add_column("WORKER")
    if with_state:
        table.add_column("STATE")
    table.add_column("LAST SEEN")
    table.add_column("RUNNING", justify="right")
    if with_types:
        table.add_column("TYPES")
    for worker in workers:
        cells = [shown(worker["worker_id"])]
        if with_state:
            state = str(worker.get("state") or "-")
            cells.append(shown(state, WORKER_STATE_STYLE.get(state, "")))
        cells += [shown(ago(worker["last_seen_at"])), shown(worker["running"])]
        if with_types:
            cells.append(shown(", ".join(worker.get("types") or []) or "-"))
        table.add_row(*cells)
    if not workers:
        table.add_row("(none in the last hour)")
    return table


def unserved_warnings(stats: dict[str, Any]) -> list[Text]:
    """A line for each job type with jobs due (claimable now) that no live worker serves:
    the server counts only those (`unserved_types[].queued`)."""
    return [
        shown(
            f"{count(int(row['queued']), 'job')} of type `{row['type']}` due now: "
            "no live worker serves this type",
            "yellow",
        )
        for row in stats.get("unserved_types") or []
    ]


def print_status(console: Console, stats: dict[str, Any]) -> None:
    by_status = stats["by_status"]
    summary = Table(box=None, header_style="bold", pad_edge=False)
    for status in by_status:
        summary.add_column(shown(status), justify="right")
    summary.add_row(*(shown(number) for number in by_status.values()))
    console.print(summary)
    age = stats.get("oldest_queued_age_seconds")
    console.print(
        "oldest queued job: " + ("-" if age is None else f"{age:.1f}s waiting"), style="dim"
    )
    for warning in unserved_warnings(stats):
        console.print(warning, highlight=False)
    console.print(throughput_table(stats.get("throughput") or []))
    types: dict[str, dict[str, int]] = {}
    for row in stats["counts"]:
        types.setdefault(row["type"], {})[row["status"]] = row["count"]
    if types:
        by_type = Table(title="by type", title_justify="left", box=None, header_style="bold")
        by_type.add_column("TYPE")
        for status in by_status:
            by_type.add_column(shown(status), justify="right")
        for job_type, counts in sorted(types.items()):
            by_type.add_row(
                shown(job_type), *(shown(counts.get(status, 0)) for status in by_status)
            )
        console.print(by_type)
    console.print(workers_table(stats["workers"]))


def settings_table(view: dict[str, Any]) -> Table:
    """A workspace's settings (as `GET …/settings` answers them): each value and its origin."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("SETTING", "VALUE", "FROM"):
        table.add_column(column, no_wrap=True)
    for section, values in view.items():
        if section in ("source", "instance_defaults"):
            continue
        sources = view.get("source", {}).get(section, {})
        if not isinstance(values, dict):  # a setting of its own (weight)
            source = sources if isinstance(sources, str) else "-"
            table.add_row(shown(section), shown(values), shown(source))
            continue
        for name, value in values.items():
            setting = "forever" if value is None and name.endswith("_days") else value
            table.add_row(shown(f"{section}.{name}"), shown(setting), shown(sources.get(name, "-")))
    return table
