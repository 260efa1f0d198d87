"""The `conveyor` command: run the server and workers, administer the database, and drive
jobs over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import click
from rich.console import Console

from conveyor.cli import render
from conveyor.client import ApiError, Client
from conveyor.config import Settings
from conveyor.domain.errors import ConveyorError
from conveyor.domain.workspaces import Role
from conveyor.service.workspaces import WorkspaceService
from conveyor.store import Store, open_store
from conveyor.store.urls import DatabaseURL

T = TypeVar("T")
# Piped output keeps whole lines (ids are meant to be copied), however narrow the pipe.
console = Console(width=None if sys.stdout.isatty() else 200)
errors = Console(stderr=True)

DEFAULT_URL = "http://127.0.0.1:8080"


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    sys.exit(code)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except ConveyorError as error:
        fail(str(error))
        raise AssertionError("unreachable") from error


def settings_from(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**overrides)
    except ConveyorError as error:
        fail(str(error))
        raise


async def with_store(settings: Settings, action: Callable[[Store], Coroutine[Any, Any, T]]) -> T:
    store = await open_store(DatabaseURL.parse(settings.database_url), pool_size=2)
    try:
        return await action(store)
    finally:
        await store.close()


database_option = click.option(
    "--database-url",
    envvar="CONVEYOR_DATABASE_URL",
    help="sqlite:///path.db or postgresql://… (default: sqlite:///conveyor.db)",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="conveyor")
def main() -> None:
    """Conveyor: a durable, concurrency-safe job runner."""


# -- server ---------------------------------------------------------------------------------


def importable_from_here() -> None:
    """Let --handlers name modules in the current directory, as `python -m` would."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


@main.command()
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
    from conveyor.server import (
        ConveyorServer,
        SchemaOutOfDate,
        bootstrap_admin_key,
        prepare_schema,
    )

    handlers = options.pop("handlers") or None
    settings = settings_from(**options, handlers=tuple(handlers) if handlers else None)
    importable_from_here()
    configure_logging(settings)
    if settings.insecure_local and not settings.on_loopback:
        fail(
            f"--insecure-local serves without API keys and only on a loopback address, "
            f"not {settings.host}"
        )
    url = DatabaseURL.parse(settings.database_url)
    try:
        prepare_schema(url, migrate=settings.migrate)
    except SchemaOutOfDate as error:
        fail(str(error))
    if not settings.insecure_local:
        issued = asyncio.run(bootstrap_admin_key(settings))
        if issued is not None:
            console.print(
                "[bold]First start:[/bold] created workspace [cyan]default[/cyan] and an admin "
                f"key, saved to [cyan]{settings.admin_key_file}[/cyan] (readable only by you). "
                "Sign in to the dashboard with it; the CLI reads it from that file:",
                highlight=False,
            )
            click.echo(f"  {issued}")
    console.print(
        f"Conveyor on [cyan]http://{settings.host}:{settings.port}[/cyan] "
        f"({url.kind}, {settings.workers} in-process worker slots)",
        highlight=False,
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
    )
    freeze_startup_heap()
    ConveyorServer(config).run()


@main.command()
@database_option
def migrate(database_url: str | None) -> None:
    """Bring the database schema up to date."""
    from conveyor.store.migrate import current_revision, head_revision, upgrade

    settings = settings_from(database_url=database_url)
    url = DatabaseURL.parse(settings.database_url)
    before = current_revision(url)
    upgrade(url)
    console.print(
        f"{url.redacted()}: schema at {head_revision()} (was {before or 'empty'})",
        highlight=False,
    )


# -- workspaces and keys (straight on the database) -----------------------------------------


@main.group()
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
    settings = settings_from(database_url=database_url)
    found = run(with_store(settings, lambda store: WorkspaceService(store).list_workspaces()))
    console.print(render.workspaces_table(found))


@main.group()
def key() -> None:
    """Create, list and revoke API keys (on the database directly)."""


@key.command("create")
@click.option("--workspace", "workspace_name", required=True, help="workspace name or id")
@click.option("--role", type=click.Choice([role.value for role in Role]), required=True)
@click.option("--name", default=None, help="a label to recognise the key by")
@database_option
def key_create(workspace_name: str, role: str, name: str | None, database_url: str | None) -> None:
    """Create a key; its secret is printed once and never stored."""
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
    settings = settings_from(database_url=database_url)

    async def action(store: Store) -> Any:
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
        raise

    async def action(store: Store) -> Any:
        service = WorkspaceService(store)
        return await service.revoke_key((await service.get_workspace(workspace_name)).id, parsed)

    revoked = run(with_store(settings, action))
    console.print(f"key {revoked.id} revoked")


# -- jobs, over HTTP ------------------------------------------------------------------------


def default_key(admin_key_file: Path) -> str | None:
    if os.environ.get("CONVEYOR_API_KEY"):
        return os.environ["CONVEYOR_API_KEY"]
    if admin_key_file.is_file():
        return admin_key_file.read_text().strip() or None
    return None


class ClientContext:
    def __init__(self, url: str, key: str | None, workspace: str | None) -> None:
        self.url = url
        self.key = key
        self.workspace = workspace

    def client(self) -> Client:
        if not self.key:
            fail(
                "no API key: pass --key, set CONVEYOR_API_KEY, or run where `conveyor serve` "
                "wrote conveyor-admin.key"
            )
        return Client(self.url, self.key, workspace=self.workspace)


pass_client = click.make_pass_decorator(ClientContext)


def api_call(action: Callable[[], T]) -> T:
    try:
        return action()
    except ApiError as error:
        fail(error.detail, 2 if error.status in (400, 404, 409, 422) else 1)
        raise
    except OSError as error:
        fail(f"cannot reach the server: {error}")
        raise


F = TypeVar("F", bound=Callable[..., Any])


def server_options(command: F) -> F:
    """--url, --key and --workspace, for commands that talk to a running server."""
    command = click.option(
        "--workspace", envvar="CONVEYOR_WORKSPACE", default=None, help="default: the key's"
    )(command)
    command = click.option(
        "--key", envvar="CONVEYOR_API_KEY", default=None, help="API key (or CONVEYOR_API_KEY)"
    )(command)
    return click.option("--url", envvar="CONVEYOR_URL", default=DEFAULT_URL, show_default=True)(
        command
    )


def client_context(url: str, key: str | None, workspace: str | None) -> ClientContext:
    return ClientContext(url, key or default_key(Settings.from_env().admin_key_file), workspace)


@main.group()
@server_options
@click.pass_context
def jobs(ctx: click.Context, url: str, key: str | None, workspace: str | None) -> None:
    """Create, list, show, cancel, retry and watch jobs on a running server."""
    ctx.obj = client_context(url, key, workspace)


@main.command()
@server_options
@click.option("--json", "as_json", is_flag=True)
def status(url: str, key: str | None, workspace: str | None, as_json: bool) -> None:
    """Queue depth by status and type, workers, and the oldest queued job's age."""
    with client_context(url, key, workspace).client() as client:
        found = api_call(lambda: client.stats())
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    render.print_status(console, found)


def parse_payload(text: str | None) -> Any:
    if text is None:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        fail(f"--payload is not JSON: {error}")


@jobs.command("create")
@click.option("--type", "job_type", required=True, help="job type, e.g. email.send")
@click.option("--payload", default=None, help="JSON, or @file.json")
@click.option("--priority", type=click.IntRange(1, 10), default=None, help="1 (first) .. 10")
@click.option("--agent-task", "agent_task_id", default=None)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=None)
@click.option("--idempotency-key", default=None)
@click.option("--hold", is_flag=True, default=None, help="create PENDING (not claimable yet)")
@click.option("--json", "as_json", is_flag=True, help="print the job as JSON")
@pass_client
def jobs_create(
    ctx: ClientContext, /, job_type: str, payload: str | None, as_json: bool, **options: Any
) -> None:
    """Create a job."""
    with ctx.client() as client:
        job = api_call(lambda: client.create_job(job_type, parse_payload(payload), **options))
    if as_json:
        click.echo(json.dumps(job, indent=2))
    else:
        console.print(f"created job [cyan]{job['id']}[/cyan] ({job['type']}, {job['status']})")


@jobs.command("list")
@click.option("--status", multiple=True, help="repeatable: QUEUED, RUNNING, …")
@click.option("--type", "job_type", default=None)
@click.option("--agent-task", "agent_task_id", default=None)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--follow", "-f", is_flag=True, help="then print each change as it happens")
@pass_client
def jobs_list(
    ctx: ClientContext,
    status: tuple[str, ...],
    job_type: str | None,
    agent_task_id: str | None,
    page: int,
    limit: int,
    as_json: bool,
    follow: bool,
) -> None:
    """List jobs, newest first (with --follow, keep printing changes until Ctrl-C)."""
    with ctx.client() as client:
        found = api_call(
            lambda: client.list_jobs(
                status=[s.upper() for s in status],
                job_type=job_type,
                agent_task_id=agent_task_id,
                page=page,
                limit=limit,
            )
        )
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    console.print(render.jobs_table(found["data"]))
    meta = found["meta"]
    console.print(
        f"page {meta['page']} of {max(meta['total_pages'], 1)} · {meta['total']} jobs",
        style="dim",
    )
    if follow:
        with ctx.client() as client:
            changes = client.stream_workspace_events(
                job_types=[job_type] if job_type else None,
                statuses=[s.upper() for s in status] or None,
            )
            with contextlib.suppress(KeyboardInterrupt):
                api_call(lambda: render.follow_changes(console, changes))


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@pass_client
def jobs_show(ctx: ClientContext, job_id: str, as_json: bool) -> None:
    """Show a job with its steps and events."""
    with ctx.client() as client:
        job = api_call(lambda: client.get_job(job_id))
    if as_json:
        click.echo(json.dumps(job, indent=2))
        return
    render.print_job(console, job)


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--reason", default=None)
@pass_client
def jobs_cancel(ctx: ClientContext, job_id: str, reason: str | None) -> None:
    """Cancel a pending, queued or running job."""
    with ctx.client() as client:
        job = api_call(lambda: client.cancel_job(job_id, reason))
    console.print(f"job [cyan]{job['id']}[/cyan] is {job['status']}")


@jobs.command("retry")
@click.argument("job_id")
@pass_client
def jobs_retry(ctx: ClientContext, job_id: str) -> None:
    """Run a failed or cancelled job again (as a new job)."""
    with ctx.client() as client:
        job = api_call(lambda: client.retry_job(job_id))
    console.print(f"retried as job [cyan]{job['id']}[/cyan] ({job['status']})")


EXIT_CODES = {"COMPLETED": 0, "FAILED": 1, "CANCELLED": 3}


@jobs.command("watch")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="print each event as a JSON line")
@pass_client
def jobs_watch(ctx: ClientContext, job_id: str, as_json: bool) -> None:
    """Follow a job live until it ends; exit 0 if it COMPLETED, 1 FAILED, 3 CANCELLED."""
    with ctx.client() as client:
        outcome = api_call(lambda: render.watch(console, client.stream_job_events(job_id), as_json))
    sys.exit(EXIT_CODES.get(outcome, 1))


# -- remote worker --------------------------------------------------------------------------


def worker_key(key: str | None, key_file: Path | None) -> str:
    if key and key_file:
        fail("pass --key or --key-file, not both")
    if key_file is not None:
        try:
            key = key_file.read_text().strip()
        except OSError as error:
            fail(f"cannot read the key file: {error}")
        if not key:
            fail(f"the key file {key_file} is empty")
    if not key:
        fail("no API key: pass --key-file, --key, or set CONVEYOR_API_KEY")
    return key


@main.command()
@click.option("--url", envvar="CONVEYOR_URL", default=DEFAULT_URL, show_default=True)
@click.option("--key", envvar="CONVEYOR_API_KEY", default=None, help="a worker (or admin) key")
@click.option(
    "--key-file",
    envvar="CONVEYOR_API_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="read the key from this file (keeps it out of the process list)",
)
@click.option(
    "--handlers", "handler_refs", multiple=True, required=True, help="module:object (repeatable)"
)
@click.option("--concurrency", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option("--lease-seconds", type=click.FloatRange(1, 3600), default=30.0, show_default=True)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="seconds running jobs get to finish on SIGTERM before they are handed back",
)
@click.option("--worker-id", default=None, help="default: host:pid:random")
@click.option(
    "--allow-command-jobs",
    is_flag=True,
    envvar="CONVEYOR_ALLOW_COMMAND_JOBS",
    help="run the built-in `command` job type",
)
def worker(
    url: str,
    key: str | None,
    key_file: Path | None,
    handler_refs: tuple[str, ...],
    concurrency: int,
    lease_seconds: float,
    shutdown_grace: float,
    worker_id: str | None,
    allow_command_jobs: bool,
) -> None:
    """Run jobs from a Conveyor server, over HTTP (stops gracefully on SIGTERM)."""
    from conveyor.heap import freeze_startup_heap
    from conveyor.logs import configure_logging
    from conveyor.worker import Handlers, Worker, WorkerOptions, load_handlers
    from conveyor.worker.backend import AccessRefused
    from conveyor.worker.command import register as register_command_jobs
    from conveyor.worker.options import default_worker_id
    from conveyor.worker.remote import HttpBackend

    configure_logging(Settings.from_env())
    key = worker_key(key, key_file)
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
        backend = HttpBackend.connect(url, key)
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
    except AccessRefused as refused:
        fail(str(refused))


if __name__ == "__main__":
    main()
