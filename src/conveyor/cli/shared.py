"""What every command shares: the consoles, how a failure is reported, settings, and the
way to the database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from conveyor.config import Settings
from conveyor.domain.errors import ConveyorError
from conveyor.store import Store, open_store
from conveyor.store.urls import DatabaseURL

T = TypeVar("T")

# Piped output keeps whole lines (ids are meant to be copied), however narrow the pipe.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """One line on stderr and a non-zero exit: what a person (or a script) needs, no trace.
    The message is text, not markup: it quotes the server and the user, brackets and all
    (`must be … of [a-z0-9-]`), its control characters written out (`render.shown`)."""
    from conveyor.cli.render import shown  # render imports the client: only when failing

    errors.print(
        Text.assemble(("error:", "red"), " ", shown(message)), highlight=False, soft_wrap=True
    )
    sys.exit(code)


def nothing_to_change() -> click.UsageError:
    """What a `set` command given no option says (`workspace set`, `limits set`): a usage
    error (exit 2), not a write that changes nothing yet bumps a version."""
    return click.UsageError("name a setting to change (see --help)")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except ConveyorError as error:
        fail(str(error))


def settings_from(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ConveyorError as error:
        fail(str(error))


async def with_store(settings: Settings, action: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    """Run `action` on the database of `settings`: the way every command that works on the
    database directly gets there. A database that is missing or at another schema revision
    is refused, saying what to do, before anything touches it (no SQLite file is created)."""
    from conveyor.store.migrate import require_current_schema  # Alembic: only when needed

    url = DatabaseURL.parse(settings.database_url)
    # Reading the revision runs an event loop of its own (on PostgreSQL): not on this one.
    await asyncio.to_thread(require_current_schema, url)
    store = await open_store(url, pool_size=2)
    try:
        return await action(store)
    finally:
        await store.close()


database_option = click.option(
    "--database-url",
    envvar="CONVEYOR_DATABASE_URL",
    help="sqlite:///path.db or postgresql://… (default: sqlite:///conveyor.db)",
)


def importable_from_here() -> None:
    """Let --handlers name modules in the current directory, as `python -m` would."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
