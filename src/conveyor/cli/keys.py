"""`conveyor key …`: API keys, on the database directly (a key's secret is shown once)."""

from __future__ import annotations

from uuid import UUID

import click

from conveyor.cli import render
from conveyor.cli.shared import (
    console,
    database_option,
    errors,
    fail,
    run,
    settings_from,
    with_store,
)
from conveyor.domain.workspaces import ApiKey, Role
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store


@click.group()
def key() -> None:
    """Create, list and revoke API keys (on the database directly)."""


@key.command("create")
@click.option("--workspace", "workspace_name", required=True, help="workspace name or id")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--name", default=None, help="a label to recognise the key by")
@database_option
def key_create(workspace_name: str, role: str, name: str | None, database_url: str | None) -> None:
    """Create a key; its secret alone goes to stdout (`> file` keeps it), once: it is never
    stored."""
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> str:
        service = WorkspaceService(store)
        found = await service.get_workspace(workspace_name)
        return (await service.create_key(found.id, Role(role), name)).token

    token = run(with_store(settings, action))
    errors.print(f"{role} key for {workspace_name} (shown once, store it now):")
    click.echo(token)


@key.command("list")
@click.option("--workspace", "workspace_name", required=True)
@database_option
def key_list(workspace_name: str, database_url: str | None) -> None:
    """List a workspace's keys (never their secrets)."""
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> list[ApiKey]:
        service = WorkspaceService(store)
        return await service.list_keys((await service.get_workspace(workspace_name)).id)

    console.print(render.keys_table(run(with_store(settings, action))))


@key.command("revoke")
@click.option("--workspace", "workspace_name", required=True)
@click.argument("key_id")
@database_option
def key_revoke(workspace_name: str, key_id: str, database_url: str | None) -> None:
    """Revoke KEY_ID: refused from the next request on."""
    settings = settings_from(database_url=database_url)
    try:
        parsed = UUID(key_id)
    except ValueError:
        fail(f"{key_id!r} is not a key id (a UUID, as `conveyor key list` shows)")

    async def action(store: Store) -> ApiKey:
        service = WorkspaceService(store)
        return await service.revoke_key((await service.get_workspace(workspace_name)).id, parsed)

    revoked = run(with_store(settings, action))
    console.print(f"key {revoked.id} revoked")
