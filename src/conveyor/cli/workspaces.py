"""`conveyor workspace …`: on the database directly, like `createdb`."""

from __future__ import annotations

import click

from conveyor.cli import render
from conveyor.cli.shared import console, database_option, run, settings_from, with_store
from conveyor.service.workspaces import WorkspaceService


@click.group()
def workspace() -> None:
    """Create and list workspaces (on the database directly)."""


@workspace.command("create")
@click.argument("name")
@database_option
def workspace_create(name: str, database_url: str | None) -> None:
    """Create workspace NAME ([a-z0-9-])."""
    settings = settings_from(database_url=database_url)
    created = run(
        with_store(settings, lambda store: WorkspaceService(store).create_workspace(name))
    )
    console.print(f"workspace [cyan]{created.slug}[/cyan] created (id {created.id})")


@workspace.command("list")
@database_option
def workspace_list(database_url: str | None) -> None:
    """List the workspaces."""
    settings = settings_from(database_url=database_url)
    found = run(with_store(settings, lambda store: WorkspaceService(store).list_workspaces()))
    console.print(render.workspaces_table(found))
