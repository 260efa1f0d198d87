"""`conveyor limits …`: a workspace's limits on a running server — how many jobs of a
concurrency key (or of a type, `type:<type>`) run at once, how many start in a window, and
whether they start at all."""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any, Final

import click

from conveyor.cli import render
from conveyor.cli.connection import Connection, connection_group_options, connection_options
from conveyor.cli.shared import console, nothing_to_change
from conveyor.client import Client, ConflictError, NotFoundError
from conveyor.domain.backoff import backoff_delay
from conveyor.domain.capacity import UNMADE_VERSION
from conveyor.domain.errors import Resource

NO_CAP: Final = "none"
"""What `--max-running` and `--rate` take to lift that cap."""
MaxRunning = int | str
"""A number, or NO_CAP."""
RateGiven = tuple[int, float] | str
"""(count, per_seconds), or NO_CAP."""
PUT_ATTEMPTS: Final = 5
"""How often a change is read and put again while others change the limit meanwhile."""


class MaxRunningType(click.ParamType[MaxRunning, Any]):
    name = "N|none"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> MaxRunning:
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == NO_CAP:
            return NO_CAP
        try:
            number = int(text)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or `none`", param, ctx)
        if number < 0:
            self.fail("must be 0 or more (0 lets none start)", param, ctx)
        return number


class RateType(click.ParamType[RateGiven, Any]):
    name = "COUNT/SECONDS|none"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> RateGiven:
        if isinstance(value, tuple):
            return (int(value[0]), float(value[1]))
        text = str(value).strip().lower()
        if text == NO_CAP:
            return NO_CAP
        count_text, slash, seconds_text = text.partition("/")
        try:
            if not slash:
                raise ValueError
            count, per_seconds = int(count_text), float(seconds_text)
        except ValueError:
            self.fail(f"{value!r} is not COUNT/SECONDS (10/60: ten starts a minute)", param, ctx)
        if count < 1 or not 0 < per_seconds < math.inf:
            self.fail("needs a count of 1 or more per a window of more than 0 seconds", param, ctx)
        return (count, per_seconds)


@click.group()
@connection_group_options
def limits() -> None:
    """List, show, set, pause, resume and delete the workspace's limits on a running server.
    A limit is named by a concurrency key, or `type:<job type>` for every job of a type."""


def no_such_limit(error: NotFoundError) -> bool:
    """Whether a 404 is the limit's own (there is none), not its workspace's, nor one no
    route answered (`NotFoundError.no_route`: a wrong --url, which `Connection.call`
    explains)."""
    return error.resource is Resource.LIMIT


def current(client: Client, name: str) -> dict[str, Any] | None:
    """The limit as the server has it now (None: there is none yet; a workspace that does
    not exist is the error it is)."""
    try:
        return client.get_limit(name)
    except NotFoundError as error:
        if not no_such_limit(error):
            raise
        return None


def put_changed(
    connection: Connection,
    name: str,
    *,
    max_running: MaxRunning | None = None,
    rate: RateGiven | None = None,
    paused: bool | None = None,
    must_exist: bool = False,
) -> None:
    """Read the limit, change only what was given (None: keep it), and put the whole of it back
    at the version read (`UNMADE_VERSION` for a limit there was none of); print what the
    server then answers. A change made between the read and the put refuses the put (409;
    404 for a limit deleted meanwhile): after a backoff the limit is read again and changed
    as it is then, so no one's change is undone."""
    with connection.client() as client:

        def change() -> dict[str, Any]:
            for attempt in range(1, PUT_ATTEMPTS + 1):
                found = client.get_limit(name) if must_exist else current(client, name)
                was = found or {}
                new_max = was.get("max_running") if max_running is None else max_running
                new_rate = was.get("rate") if rate is None else rate
                try:
                    return client.put_limit(
                        name,
                        max_running=new_max if isinstance(new_max, int) else None,
                        rate=None if isinstance(new_rate, str) else new_rate,
                        paused=bool(was.get("paused")) if paused is None else paused,
                        expected_version=was.get("version", UNMADE_VERSION),
                    )
                except ConflictError:
                    if attempt == PUT_ATTEMPTS:
                        raise
                except NotFoundError as error:  # the limit deleted meanwhile, not the workspace
                    if attempt == PUT_ATTEMPTS or not no_such_limit(error):
                        raise
                time.sleep(backoff_delay(attempt, first=0.05, cap=1.0, jitter=random.random()))
            raise AssertionError("unreachable")

        limit = connection.call(change)
    show(connection, limit)


def show(connection: Connection, limit: dict[str, Any]) -> None:
    if not connection.printed_json(limit):
        render.print_limit(console, limit)


@limits.command("list")
@connection_options
def limits_list(connection: Connection) -> None:
    """Every limit with its running and queued jobs, rate and why none may start."""
    with connection.client() as client:
        found = connection.call(client.list_limits)
    if connection.printed_json(found):
        return
    console.print(render.limits_table(found))


@limits.command("show")
@connection_options
@click.argument("name")
def limits_show(connection: Connection, name: str) -> None:
    """One limit: running/max, queued, rate and starts in its window, paused, why waiting."""
    with connection.client() as client:
        found = connection.call(lambda: client.get_limit(name))
    show(connection, found)


@limits.command("set")
@connection_options
@click.argument("name")
@click.option(
    "--max-running",
    type=MaxRunningType(),
    default=None,
    help="at most N of its jobs RUNNING at once (`none`: no cap)",
)
@click.option(
    "--rate",
    type=RateType(),
    default=None,
    help="at most COUNT starts in any SECONDS, e.g. 10/60 (`none`: no cap)",
)
@click.option("--pause", is_flag=True, help="stop its jobs starting")
@click.option("--resume", is_flag=True, help="let its jobs start again")
def limits_set(
    connection: Connection,
    name: str,
    max_running: MaxRunning | None,
    rate: RateGiven | None,
    pause: bool,
    resume: bool,
) -> None:
    """Create or change the limit NAME: what is not given stays as it was (a new limit:
    no cap). Give at least one option."""
    # Two flags, not `--pause/--resume`: click would let the last of both win, silently.
    if pause and resume:
        raise click.UsageError("--pause and --resume contradict each other: give one")
    paused = True if pause else False if resume else None
    if max_running is None and rate is None and paused is None:
        raise nothing_to_change()
    put_changed(connection, name, max_running=max_running, rate=rate, paused=paused)


@limits.command("pause")
@connection_options
@click.argument("name")
def limits_pause(connection: Connection, name: str) -> None:
    """Stop the limit's jobs starting (running ones go on); creates the limit if need be."""
    put_changed(connection, name, paused=True)


@limits.command("resume")
@connection_options
@click.argument("name")
def limits_resume(connection: Connection, name: str) -> None:
    """Let the limit's jobs start again (waiting workers are woken at once)."""
    put_changed(connection, name, paused=False, must_exist=True)


@limits.command("delete")
@connection_options
@click.argument("name")
def limits_delete(connection: Connection, name: str) -> None:
    """Remove the limit: its jobs start with no cap from it."""
    with connection.client() as client:
        connection.call(lambda: client.delete_limit(name))
    if connection.as_json:
        click.echo(json.dumps({"deleted": name}))
    else:
        console.print(render.shown(f"limit {name} deleted"), highlight=False)
