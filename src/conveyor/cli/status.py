"""`conveyor status`: the workspace at a glance, from a running server."""

from __future__ import annotations

import json

import click

from conveyor.cli import render
from conveyor.cli.connection import Connection, connection_options
from conveyor.cli.shared import console


@click.command()
@connection_options
def status(connection: Connection) -> None:
    """Jobs by status and type, throughput, workers, job types no live worker serves, and
    the oldest queued job's age (--json: the stats as the API returns them)."""
    with connection.client() as client:
        found = connection.call(lambda: client.stats())
    if connection.as_json:
        click.echo(json.dumps(found, indent=2))
        return
    render.print_status(console, found)
