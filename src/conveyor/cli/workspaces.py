"""`conveyor workspace …`: on the database directly, like `createdb`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.text import Text

from conveyor.cli import render
from conveyor.cli.shared import (
    console,
    database_option,
    nothing_to_change,
    run,
    settings_from,
    with_store,
)
from conveyor.domain.capacity import validate_weight
from conveyor.domain.errors import InvalidInput
from conveyor.domain.lifetime import INHERIT, MAX_RETENTION_DAYS
from conveyor.service.settings import SettingsView, WorkspaceSettingsService
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def workspace() -> None:
    """Create, list and configure workspaces (on the database directly)."""


@workspace.command("create")
@click.argument("name")
@database_option
def workspace_create(name: str, database_url: str | None) -> None:
    """Create workspace NAME ([a-z0-9-])."""
    settings = settings_from(database_url=database_url)
    created = run(
        with_store(settings, lambda store: WorkspaceService(store).create_workspace(name))
    )
    console.print(
        Text.assemble(
            "workspace ", render.shown(created.slug, "cyan"), f" created (id {created.id})"
        ),
        highlight=False,
    )


@workspace.command("list")
@database_option
def workspace_list(database_url: str | None) -> None:
    """List the workspaces."""
    settings = settings_from(database_url=database_url)
    found = run(with_store(settings, lambda store: WorkspaceService(store).list_workspaces()))
    console.print(render.workspaces_table(found))


# -- settings ---------------------------------------------------------------------------------

FOREVER = object()
"""What `none` (or `forever`) on the command line stands for: null in the settings."""


class Days(click.ParamType[Any, Any]):
    """Days of retention: a whole number, `none`/`forever` (keep forever) or `default`
    (the instance's value again)."""

    name = "days"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is FOREVER or isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text in ("none", "forever"):
            return FOREVER
        if text == INHERIT:
            return INHERIT
        try:
            days = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a number of days, none or {INHERIT}", param, ctx)
        if not 0 <= days <= MAX_RETENTION_DAYS:
            self.fail(f"must be between 0 and {MAX_RETENTION_DAYS}", param, ctx)
        return days


class Weight(click.ParamType[Any, Any]):
    """A workspace's weight: a whole number within the bounds `validate_weight` sets."""

    name = "weight"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return validate_weight(int(str(value).strip()))
        except ValueError:
            self.fail(f"{value!r} is not a whole number", param, ctx)
        except InvalidInput as error:
            self.fail(error.message, param, ctx)


SETTINGS: dict[str, tuple[str, ...]] = {}
"""Each setting option's parameter name and where it goes in a settings change."""


def setting_option(
    flag: str, path: str, kind: click.ParamType[Any, Any], help: str
) -> Callable[[F], F]:
    """An option of `workspace set` that changes the setting at `path` (dotted, as in
    `PATCH …/settings`); left out, the setting stays as it is."""
    name = path.replace(".", "__")
    SETTINGS[name] = tuple(path.split("."))
    return click.option(flag, name, type=kind, default=None, help=help)


KEPT = "%s jobs are kept this many days (none: forever; default: the instance's)"


def settings_change(given: dict[str, Any]) -> dict[str, Any]:
    """The settings change (`{"retention": {"failed_days": 60}}`) the options given ask for."""
    change: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        *parents, last = SETTINGS[name]
        level = change
        for part in parents:
            level = level.setdefault(part, {})
        level[last] = None if value is FOREVER else value
    return change


@workspace.command("set")
@click.argument("name")
@setting_option("--completed-days", "retention.completed_days", Days(), KEPT % "COMPLETED")
@setting_option("--failed-days", "retention.failed_days", Days(), KEPT % "FAILED")
@setting_option("--cancelled-days", "retention.cancelled_days", Days(), KEPT % "CANCELLED")
@setting_option(
    "--weight",
    "weight",
    Weight(),
    "its share of workers that serve several workspaces (fair turns in proportion to it)",
)
@database_option
def workspace_set(name: str, database_url: str | None, **given: Any) -> None:
    """Change workspace NAME's settings (retention, weight); what is not named stays as
    it is."""
    change = settings_change(given)
    if not change:
        raise nothing_to_change()
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> tuple[str, SettingsView]:
        found = await WorkspaceService(store).get_workspace(name)
        view = await WorkspaceSettingsService(store, settings.retention).update(found.id, change)
        return found.slug, view

    slug, view = run(with_store(settings, action))
    console.print(
        Text.assemble("workspace ", render.shown(slug, "cyan"), " updated"), highlight=False
    )
    console.print(render.settings_table(view.as_json()))


@workspace.command("show")
@click.argument("name")
@database_option
def workspace_show(name: str, database_url: str | None) -> None:
    """Show workspace NAME and its settings (its own, or the instance's)."""
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> tuple[Any, SettingsView, int]:
        found = await WorkspaceService(store).get_workspace(name)
        view = await WorkspaceSettingsService(store, settings.retention).get(found.id)
        return found, view, await store.lifetime.jobs_pruned(found.id)

    found, view, pruned = run(with_store(settings, action))
    created = render.ago(found.created_at.isoformat())
    console.print(
        Text.assemble(render.shown(found.slug, "bold"), f"  id {found.id}  created {created}"),
        highlight=False,
    )
    console.print(render.settings_table(view.as_json()))
    console.print(f"{render.count(pruned, 'job')} deleted by retention so far", style="dim")
