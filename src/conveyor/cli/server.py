"""`conveyor serve` and `conveyor migrate`: the server process and its database schema."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import click
from rich.markup import escape

from conveyor.cli import render
from conveyor.cli.shared import console, database_option, fail, importable_from_here, settings_from
from conveyor.domain.errors import ConveyorError
from conveyor.store.urls import DatabaseURL

# As uvicorn's own: connections that arrive during start-up wait in the queue.
LISTEN_BACKLOG = 2048


def listen(host: str, port: int) -> list[socket.socket]:
    """Listen on HOST:PORT (every address HOST names) before anything else starts, so a
    port that is taken stops `serve` with nothing migrated, issued, started or registered."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        fail(f"cannot listen on {host}: {error.strerror}")
    sockets: list[socket.socket] = []
    try:
        for family, kind, protocol, _, address in dict.fromkeys(addresses):
            try:
                listener = socket.socket(family, kind, protocol)
            except OSError:
                continue  # a family this machine does not have (as asyncio skips it)
            sockets.append(listener)
            # Restarts must not wait out TIME_WAIT; a live listener still refuses us (Linux).
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                listener.bind(address)
            except OSError as error:
                if error.errno != errno.EADDRNOTAVAIL:
                    raise
                sockets.pop().close()  # "localhost" naming ::1 where IPv6 is off
                continue
            listener.listen(LISTEN_BACKLOG)
    except OSError as error:
        for listener in sockets:
            listener.close()
        if error.errno == errno.EADDRINUSE:
            fail(f"port {port} is in use on {host}")
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    if not sockets:
        fail(f"cannot listen on {host}:{port}: no address of it is on this machine")
    return sockets


@click.command()
@click.option("--host", default=None, help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default 8080)")
@database_option
@click.option("--workers", type=int, default=None, help="in-process worker slots (default 0)")
@click.option(
    "--handlers",
    multiple=True,
    help="module:object holding job handlers for the in-process workers (repeatable)",
)
@click.option(
    "--allow-command-jobs", is_flag=True, default=None, help="let workers run `command` jobs"
)
@click.option("--migrate/--no-migrate", default=None, help="migrate the schema before serving")
@click.option(
    "--insecure-local", is_flag=True, default=None, help="no API keys (loopback addresses only)"
)
def serve(**options: Any) -> None:
    """Run the API, dashboard and in-process workers."""
    import uvicorn

    from conveyor.api.app import create_app
    from conveyor.heap import freeze_startup_heap
    from conveyor.logs import configure_logging
    from conveyor.private_files import write_private
    from conveyor.server import ConveyorServer, bootstrap_admin_key, prepare_schema

    handlers = options.pop("handlers") or None
    settings = settings_from(**options, handlers=tuple(handlers) if handlers else None)
    importable_from_here()
    configure_logging(settings)
    if settings.insecure_local and not settings.on_loopback:
        fail(
            f"--insecure-local serves without API keys and only on a loopback address, "
            f"not {settings.host}"
        )
    sockets = listen(settings.host, settings.port)
    url = DatabaseURL.parse(settings.database_url)
    try:
        prepare_schema(url, migrate=settings.migrate)
    except ConveyorError as error:  # missing, not migrated, unreachable
        fail(str(error))
    if not settings.insecure_local:
        issued = asyncio.run(bootstrap_admin_key(settings))
        if issued is not None:
            key_file = escape(str(settings.admin_key_file))  # a path, not markup
            try:
                write_private(settings.admin_key_file, issued + "\n", replace=True)
            except OSError as error:  # the key is shown below all the same: not lost
                saved = (
                    f"which could not be saved to [cyan]{key_file}[/cyan] "
                    f"({escape(error.strerror or str(error))}): store it now."
                )
            else:
                saved = (
                    f"saved to [cyan]{key_file}[/cyan] (readable only by you). Sign in to "
                    "the dashboard with it; the CLI reads it from that file:"
                )
            console.print(
                "[bold]First start:[/bold] created workspace [cyan]default[/cyan] and an admin "
                f"key, {saved}",
                highlight=False,
                soft_wrap=True,  # a path broken across lines cannot be copied
            )
            click.echo(f"  {issued}")
    port = sockets[0].getsockname()[1]  # the one chosen, when asked for port 0
    slots = render.count(settings.workers, "in-process worker slot")
    console.print(
        f"Conveyor on [cyan]http://{settings.host}:{port}[/cyan] ({url.kind}, {slots})",
        highlight=False,
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        backlog=LISTEN_BACKLOG,
    )
    freeze_startup_heap()
    ConveyorServer(config).run(sockets=sockets)


@click.command()
@database_option
def migrate(database_url: str | None) -> None:
    """Bring the database schema up to date."""
    from conveyor.store.migrate import head_revision, upgrade

    settings = settings_from(database_url=database_url)
    url = DatabaseURL.parse(settings.database_url)
    try:
        before = upgrade(url)
    except ConveyorError as error:  # a PostgreSQL database not created, or unreachable
        fail(str(error))
    console.print(
        f"{url.redacted()}: schema at {head_revision()} (was {before or 'empty'})",
        highlight=False,
        markup=False,  # a path may hold brackets
    )
