"""The options of every command that talks to a running server: where it is (`--url`),
the key (`--key` or `--key-file`), the workspace and `--json`.

A person types them where they think of them, before the subcommand or after it:
`conveyor jobs --url U list` and `conveyor jobs list --url U` mean the same. A group
takes them with `@connection_group_options` and keeps what it was given; each subcommand
takes them again with `@connection_options`, and what the subcommand was given wins over
the group's, which wins over the environment, which wins over the defaults."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
import httpx

from conveyor.cli.shared import fail, settings_from
from conveyor.client import ApiError, Client, NotFoundError, WorkspaceRequired

P = ParamSpec("P")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """What one command level was given on the command line (None: not given there)."""

    url: str | None = None
    key: str | None = None
    key_file: Path | None = None
    workspace: str | None = None
    as_json: bool | None = None

    def over(self, outer: ConnectionOptions) -> ConnectionOptions:
        """These options, falling back to an enclosing command's where these are silent.
        A key and a key file are one choice: a subcommand naming either replaces both."""
        own_key = bool(self.key or self.key_file)
        return ConnectionOptions(
            url=self.url or outer.url,
            key=self.key if own_key else outer.key,
            key_file=self.key_file if own_key else outer.key_file,
            workspace=self.workspace or outer.workspace,
            as_json=self.as_json or outer.as_json,
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """Resolved: the server, the key and the workspace a command uses."""

    url: str
    key: str
    workspace: str | None
    as_json: bool

    def client(self) -> Client:
        return Client(self.url, self.key, workspace=self.workspace)

    def printed_json(self, answer: object) -> bool:
        """With `--json`, print the answer as JSON and say so; otherwise print nothing (the
        command prints its text)."""
        if self.as_json:
            click.echo(json.dumps(answer, indent=2))
        return self.as_json

    def api_answers(self) -> bool:
        """Whether a Conveyor API answers at the URL: its `/v1/me` route, there for any key,
        is not a 404 that names nothing. Asked after such a 404, to tell a wrong --url
        from a path of the request itself that no route serves (`schedules show a/b`)."""
        try:
            with self.client() as client:
                client.me()
        except NotFoundError as error:
            return not error.no_route
        except ValueError:  # an answer that is not JSON: no Conveyor API
            return False
        except (ApiError, httpx.TransportError):
            return True  # something answered that route, or nothing is known: no claim
        return True

    def call(self, action: Callable[[], T]) -> T:
        """Call the server; a refusal or an unreachable server ends the command with the
        reason (exit 2 for a request the server found wrong, 1 otherwise: a URL where no
        Conveyor API answers is no request the server found wrong)."""
        try:
            return action()
        except NotFoundError as error:
            if error.no_route and not self.api_answers():
                fail(no_api_at(self.url))
            fail(error.detail, 2)
        except ApiError as error:
            fail(error.detail, 2 if error.status in (400, 409, 422) else 1)
        except httpx.TransportError as error:
            fail(f"cannot reach the server at {self.url}: {error}")
        except WorkspaceRequired:
            fail(
                "this is an instance key (it belongs to no workspace): name the workspace "
                "with --workspace NAME or CONVEYOR_WORKSPACE"
            )


def no_api_at(url: str) -> str:
    """What a command says when no Conveyor API route answered where --url points (a 404
    that names nothing): most often a URL with the API's own path after it."""
    return (
        f"no Conveyor API answered at {url} (HTTP 404 Not Found): --url (or CONVEYOR_URL) "
        f"takes the server's base URL, such as {DEFAULT_URL}, without /v1"
    )


def read_key_file(path: Path) -> str:
    try:
        key = path.read_text().strip()
    except OSError as error:
        fail(f"cannot read the key file: {error}")
    if not key:
        fail(f"the key file {path} is empty")
    return key


def choose_key(key: str | None, key_file: Path | None) -> str | None:
    if key and key_file:
        fail("pass --key or --key-file, not both")
    return read_key_file(key_file) if key_file else key or None


def environment_key() -> str | None:
    """CONVEYOR_API_KEY or CONVEYOR_API_KEY_FILE (an empty variable counts as unset)."""
    key_file = os.environ.get("CONVEYOR_API_KEY_FILE")
    return choose_key(os.environ.get("CONVEYOR_API_KEY"), Path(key_file) if key_file else None)


def resolve_key(options: ConnectionOptions, *, admin_key_file: Path | None) -> str:
    """The flags' key, else the environment's, else (for client commands) the admin key that
    the first `conveyor serve` wrote to the working directory."""
    key = choose_key(options.key, options.key_file) or environment_key()
    if not key and admin_key_file is not None and admin_key_file.is_file():
        key = read_key_file(admin_key_file)
    if not key:
        where = (
            ""
            if admin_key_file is None
            else f", or run where `conveyor serve` wrote {admin_key_file}"
        )
        fail(f"no API key: pass --key-file or --key, or set CONVEYOR_API_KEY{where}")
    return key


def resolve_url(options: ConnectionOptions) -> str:
    return options.url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL


def resolve(options: ConnectionOptions, *, admin_key_file: Path | None) -> Connection:
    return Connection(
        url=resolve_url(options),
        key=resolve_key(options, admin_key_file=admin_key_file),
        workspace=options.workspace or os.environ.get("CONVEYOR_WORKSPACE") or None,
        as_json=bool(options.as_json),
    )


def server_options(command: F) -> F:
    """--url, --key and --key-file: where the server is and how to sign in."""
    for option in reversed(
        (
            click.option(
                "--url",
                default=None,
                metavar="URL",
                help=f"the server (or CONVEYOR_URL; default {DEFAULT_URL})",
            ),
            click.option("--key", default=None, help="API key (or CONVEYOR_API_KEY)"),
            click.option(
                "--key-file",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="read the key from this file, out of the process list "
                "(or CONVEYOR_API_KEY_FILE)",
            ),
        )
    ):
        command = option(command)
    return command


def client_options(command: F) -> F:
    """server_options, --workspace and --json."""
    command = click.option(
        "--json", "as_json", is_flag=True, default=None, help="print JSON (events: one a line)"
    )(command)
    command = click.option(
        "--workspace",
        default=None,
        metavar="NAME",
        help="the workspace's name or id (or CONVEYOR_WORKSPACE; default: the key's)",
    )(command)
    return server_options(command)


def given(values: dict[str, Any]) -> ConnectionOptions:
    """Take this level's connection options out of a command's keyword arguments."""
    return ConnectionOptions(
        url=values.pop("url"),
        key=values.pop("key"),
        key_file=values.pop("key_file"),
        workspace=values.pop("workspace", None),
        as_json=values.pop("as_json", None),
    )


def connection_group_options(group: Callable[..., None]) -> Callable[..., None]:
    """For a group: take the options before its subcommand and keep them for it."""

    @client_options
    @functools.wraps(group)
    def keep(*args: Any, **values: Any) -> None:
        options = given(values)
        group(*args, **values)
        click.get_current_context().obj = options

    return keep


def connection_options(command: Callable[Concatenate[Connection, P], T]) -> Callable[..., T]:
    """For a command that talks to a server: take the options (after the subcommand too),
    merge them over an enclosing group's, resolve them, and pass the Connection first."""

    @client_options
    @functools.wraps(command)
    def with_connection(*args: Any, **values: Any) -> T:
        context = click.get_current_context()
        outer = context.find_object(ConnectionOptions) or ConnectionOptions()
        options = given(values).over(outer)
        connection = resolve(options, admin_key_file=settings_from().admin_key_file)
        return command(connection, *args, **values)

    return with_connection
