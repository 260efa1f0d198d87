"""`conveyor prune`: one pass of the pruner by hand, on the database directly (every
`conveyor serve` also runs it on its own, every CONVEYOR_PRUNE_INTERVAL_SECONDS)."""

from __future__ import annotations

import json

import click
from rich.table import Table

from conveyor.cli import render
from conveyor.cli.shared import console, database_option, fail, run, settings_from, with_store
from conveyor.service.pruning import Pruner, PruneReport
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store


@click.command()
@click.option("--workspace", "workspace_name", default=None, help="only this workspace")
@click.option("--dry-run", is_flag=True, help="say what would be deleted; delete nothing")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@database_option
def prune(
    workspace_name: str | None, dry_run: bool, as_json: bool, database_url: str | None
) -> None:
    """Delete finished jobs (with their steps and events) older than their workspace's
    retention, now, and say what went (or, with --dry-run, what would)."""
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> PruneReport:
        workspace_id = None
        if workspace_name is not None:
            workspace_id = (await WorkspaceService(store).get_workspace(workspace_name)).id
        pruner = Pruner(store, settings.retention, batch_size=settings.prune_batch_jobs)
        return await pruner.run_once(workspace_id=workspace_id, dry_run=dry_run)

    report = run(with_store(settings, action))
    if as_json:
        click.echo(json.dumps(_as_json(report), indent=2))
    elif not report.counts:
        if not report.busy:
            console.print("nothing to delete")
    else:
        console.print(_table(report))
        verb = "would delete" if dry_run else "deleted"
        console.print(
            f"{verb} {render.count(report.jobs, 'job')} in {report.seconds:.1f}s", style="dim"
        )
    if report.schedule_runs:
        runs = render.count(report.schedule_runs, "schedule run")
        console.print(f"deleted {runs} (history)", style="dim")
    if report.busy:
        fail("another server is pruning this database right now: try again later", 1)


def _table(report: PruneReport) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("WORKSPACE", "STATUS", "JOBS", *(() if report.dry_run else ("EVENTS",))):
        table.add_column(column, no_wrap=True, justify="right" if column.isupper() else "left")
    for count in report.counts:
        row = [render.shown(count.workspace), count.status.value, f"{count.jobs:,}"]
        if not report.dry_run:
            row.append(f"{count.events:,}")
        table.add_row(*row)
    return table


def _as_json(report: PruneReport) -> dict[str, object]:
    return {
        "dry_run": report.dry_run,
        "jobs": report.jobs,
        "seconds": round(report.seconds, 3),
        "busy": report.busy,
        "schedule_runs": report.schedule_runs,
        "deleted" if not report.dry_run else "would_delete": [
            {
                "workspace": count.workspace,
                "status": count.status.value,
                "jobs": count.jobs,
                **({} if report.dry_run else {"events": count.events}),
            }
            for count in report.counts
        ],
    }
