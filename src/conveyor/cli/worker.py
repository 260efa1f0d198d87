"""`conveyor worker`: run jobs from a Conveyor server, over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from conveyor.cli.connection import (
    ConnectionOptions,
    no_api_at,
    resolve_key,
    resolve_url,
    server_options,
)
from conveyor.cli.shared import fail, importable_from_here, settings_from
from conveyor.domain.jobs import DEFAULT_LEASE_SECONDS


@click.command()
@server_options
@click.option(
    "--handlers", "handler_refs", multiple=True, required=True, help="module:object (repeatable)"
)
@click.option("--concurrency", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(1, 3600),
    default=DEFAULT_LEASE_SECONDS,
    show_default=True,
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="seconds running jobs get to finish on SIGTERM before they are handed back",
)
@click.option("--worker-id", default=None, help="default: host:pid:random")
@click.option(
    "--workspace",
    "workspaces",
    multiple=True,
    metavar="NAME",
    help="an instance key: claim only from this workspace (repeatable; default: every one)",
)
@click.option(
    "--allow-command-jobs",
    is_flag=True,
    envvar="CONVEYOR_ALLOW_COMMAND_JOBS",
    help="run the built-in `command` job type",
)
def worker(
    url: str | None,
    key: str | None,
    key_file: Path | None,
    handler_refs: tuple[str, ...],
    concurrency: int,
    lease_seconds: float,
    shutdown_grace: float,
    worker_id: str | None,
    workspaces: tuple[str, ...],
    allow_command_jobs: bool,
) -> None:
    """Run jobs from a Conveyor server, over HTTP, with a worker (or admin) key; stops
    gracefully on SIGTERM. With an instance key it serves every workspace, in fair turns
    (or those named with --workspace)."""
    from conveyor.heap import freeze_startup_heap
    from conveyor.logs import configure_logging
    from conveyor.worker import Handlers, Worker, WorkerOptions, load_handlers
    from conveyor.worker.backend import NoApi, WorkerRefused
    from conveyor.worker.command import register as register_command_jobs
    from conveyor.worker.options import default_worker_id
    from conveyor.worker.remote import HttpBackend

    configure_logging(settings_from())
    given = ConnectionOptions(url=url, key=key, key_file=key_file)
    # A worker never falls back to the admin key file: it should run with a worker key.
    api_key = resolve_key(given, admin_key_file=None)
    server_url = resolve_url(given)
    importable_from_here()
    handlers = Handlers()
    try:
        for reference in handler_refs:
            handlers.merge(load_handlers(reference))
    except (ImportError, ValueError) as error:
        fail(f"cannot load handlers: {error}")
    if allow_command_jobs:
        register_command_jobs(handlers)
    freeze_startup_heap()

    async def work() -> None:
        backend = HttpBackend.connect(server_url, api_key, workspaces=list(workspaces) or None)
        options = WorkerOptions(
            concurrency=concurrency,
            lease_seconds=lease_seconds,
            shutdown_grace_seconds=shutdown_grace,
            worker_id=worker_id or default_worker_id(),
        )
        runner = Worker(backend, handlers, options)
        try:
            await runner.run(handle_signals=True)
        finally:
            await backend.close()

    try:
        asyncio.run(work())
    except NoApi:
        fail(no_api_at(server_url))
    except WorkerRefused as refused:  # a key refused, a workspace that does not exist
        fail(str(refused))
