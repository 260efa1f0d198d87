"""`conveyor key …`: API keys, on the database directly (a key's secret is shown once).

A key belongs to one workspace (`--workspace NAME`), or, with `--instance`, to none: an
instance worker claims from every workspace, an instance admin acts in every one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
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
from conveyor.domain.workspaces import INSTANCE_ROLE_PERMISSIONS, ApiKey, Role
from conveyor.private_files import write_private
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store

F = TypeVar("F", bound=Callable[..., Any])
INSTANCE_ROLES = tuple(role.value for role in Role if role in INSTANCE_ROLE_PERMISSIONS)


@click.group()
def key() -> None:
    """Create, list and revoke API keys (on the database directly)."""


def owner_options(command: F) -> F:
    """--workspace NAME or --instance: whose keys a command is about."""
    command = click.option(
        "--instance",
        is_flag=True,
        help="an instance key, bound to no workspace (worker or admin of every workspace)",
    )(command)
    return click.option(
        "--workspace", "workspace_name", default=None, metavar="NAME", help="workspace name or id"
    )(command)


def workspace_or_instance(workspace_name: str | None, instance: bool) -> str | None:
    """The workspace named, or None for --instance; exactly one of the two."""
    if instance and workspace_name:
        raise click.UsageError("pass --workspace NAME or --instance, not both")
    if not instance and not workspace_name:
        raise click.UsageError("pass --workspace NAME (a workspace's key) or --instance")
    return workspace_name


@key.command("create")
@owner_options
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--name", default=None, help="a label to recognise the key by")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write the secret to this new file, readable by you only (not to stdout)",
)
@database_option
def key_create(
    workspace_name: str | None,
    instance: bool,
    role: str,
    name: str | None,
    out: Path | None,
    database_url: str | None,
) -> None:
    """Create a key; its secret goes to stdout, or with --out to a new file only you can
    read, once: it is never stored. With --instance: a worker or admin key of every
    workspace."""
    workspace_name = workspace_or_instance(workspace_name, instance)
    if instance and role not in INSTANCE_ROLES:
        raise click.UsageError(
            f"an instance key is a {' or an '.join(INSTANCE_ROLES)} key, not a {role} key"
        )
    if out is not None and os.path.lexists(out):  # a dangling symlink too
        raise click.UsageError(f"{out} exists: --out writes a new file (remove it first)")
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> str:
        service = WorkspaceService(store)
        owner = None if workspace_name is None else (await service.get_workspace(workspace_name)).id
        return (await service.create_key(owner, Role(role), name)).token

    token = run(with_store(settings, action))
    whose = "every workspace (an instance key)" if workspace_name is None else workspace_name
    if out is not None:
        try:
            write_private(out, token + "\n", replace=False)
        except OSError as error:  # made meanwhile, or not writable: the key is not lost
            errors.print(
                f"could not write {out} ({error.strerror}); the key, shown once:",
                markup=False,
                highlight=False,
            )
            click.echo(token)
            raise SystemExit(1) from None
        errors.print(
            f"{role} key for {whose} written to {out} (readable by you only)",
            markup=False,
            highlight=False,
        )
        return
    errors.print(f"{role} key for {whose} (shown once, store it now):")
    click.echo(token)


@key.command("list")
@owner_options
@database_option
def key_list(workspace_name: str | None, instance: bool, database_url: str | None) -> None:
    """List a workspace's keys, or (--instance) the instance keys; never their secrets."""
    workspace_name = workspace_or_instance(workspace_name, instance)
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> list[ApiKey]:
        service = WorkspaceService(store)
        if workspace_name is None:
            return await service.list_instance_keys()
        return await service.list_keys((await service.get_workspace(workspace_name)).id)

    console.print(render.keys_table(run(with_store(settings, action))))


@key.command("revoke")
@owner_options
@click.argument("key_id")
@database_option
def key_revoke(
    workspace_name: str | None, instance: bool, key_id: str, database_url: str | None
) -> None:
    """Revoke KEY_ID (of the workspace, or --instance): refused from the next request on."""
    workspace_name = workspace_or_instance(workspace_name, instance)
    settings = settings_from(database_url=database_url)
    try:
        parsed = UUID(key_id)
    except ValueError:
        fail(f"{key_id!r} is not a key id (a UUID, as `conveyor key list` shows)")

    async def action(store: Store) -> ApiKey:
        service = WorkspaceService(store)
        if workspace_name is None:
            return await service.revoke_instance_key(parsed)
        return await service.revoke_key((await service.get_workspace(workspace_name)).id, parsed)

    revoked = run(with_store(settings, action))
    console.print(render.shown(f"key {revoked.id} revoked"), highlight=False)
