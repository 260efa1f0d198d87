"""Administration straight on the database: migrate, workspaces, keys."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor.store.migrate import head_revision
from conveyor.store.urls import DatabaseURL
from tests.cli.helpers import conveyor, environment
from tests.support.postgres import create_database, drop_database, free_port

DATABASE_COMMANDS = (
    ("workspace", "list"),
    ("workspace", "create", "foo"),
    ("workspace", "set", "acme", "--weight", "5"),
    ("key", "create", "--workspace", "default", "--role", "worker"),
    ("key", "list", "--instance"),
    ("prune", "--dry-run"),
)
"""Commands that work on the database directly (each opens it the one way the CLI has)."""


async def test_migrate_workspaces_and_keys_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    ran = await conveyor("migrate", "--database-url", url)
    assert ran.code == 0, ran.output
    assert "schema at" in ran.out
    ran = await conveyor("workspace", "create", "team-a", "--database-url", url)
    assert ran.code == 0, ran.output
    ran = await conveyor("workspace", "create", "Team A", "--database-url", url)
    assert ran.code == 1
    assert "name" in ran.err
    ran = await conveyor("workspace", "list", "--database-url", url)
    assert "team-a" in ran.out
    ran = await conveyor(
        "key",
        "create",
        "--workspace",
        "team-a",
        "--role",
        "worker",
        "--name",
        "ci",
        "--database-url",
        url,
    )
    assert ran.code == 0, ran.output
    token = ran.out.strip()
    assert token.startswith("cvk_"), "the secret alone on stdout: `key create > file` keeps it"
    ran = await conveyor("key", "list", "--workspace", "team-a", "--database-url", url)
    assert "worker" in ran.out
    assert "ci" in ran.out
    assert token not in ran.out, "secrets are shown once, never listed"
    key_id = next(line.split()[0] for line in ran.out.splitlines() if "worker" in line)
    ran = await conveyor("key", "revoke", "--workspace", "team-a", key_id, "--database-url", url)
    assert ran.code == 0, ran.output
    ran = await conveyor("key", "list", "--workspace", "team-a", "--database-url", url)
    assert "-" not in [line.split()[-1] for line in ran.out.splitlines() if key_id in line]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_error_and_a_key_name_keep_their_square_brackets(
    database_url: DatabaseURL,
) -> None:
    """What people and the server wrote is printed as text, never read as markup: a
    message quoting `[a-z0-9-]` keeps it, and so does a key named `[ci] deploy`."""
    url = ("--database-url", database_url.url)
    ran = await conveyor("workspace", "create", "Bad_Name", *url)
    assert ran.code == 1
    assert ran.err == (
        "error: name: must be 1..63 characters of [a-z0-9-], starting and ending with a "
        "letter or digit\n"
    )
    assert (await conveyor("workspace", "create", "team-a", *url)).code == 0
    ran = await conveyor(
        "key", "create", "--workspace", "team-a", "--role", "worker", "--name", "[ci] deploy", *url
    )
    assert ran.code == 0, ran.output
    ran = await conveyor("key", "list", "--workspace", "team-a", *url)
    assert ran.out.splitlines()[1].split()[2:4] == ["[ci]", "deploy"], ran.out


async def test_instance_keys_are_created_listed_and_revoked_on_the_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert (await conveyor("migrate", "--database-url", url)).code == 0
    assert (await conveyor("workspace", "create", "team-a", "--database-url", url)).code == 0
    created = {}
    for role in ("worker", "admin"):
        ran = await conveyor(
            "key", "create", "--instance", "--role", role, "--name", f"pool-{role}",
            "--database-url", url,
        )  # fmt: skip
        assert ran.code == 0, ran.output
        created[role] = ran.out.strip()
        assert created[role].startswith("cvk_"), "the secret alone on stdout"
        assert "every workspace" in ran.err
    ran = await conveyor("key", "create", "--instance", "--role", "client", "--database-url", url)
    assert ran.code == 2, "an instance key is a worker or an admin key"
    assert "worker or an admin" in ran.err, ran.err
    ran = await conveyor("key", "create", "--role", "worker", "--database-url", url)
    assert (ran.code, "--instance" in ran.err) == (2, True), ran.output
    ran = await conveyor(
        "key", "create", "--instance", "--workspace", "team-a", "--role", "worker",
        "--database-url", url,
    )  # fmt: skip
    assert (ran.code, "not both" in ran.err) == (2, True), ran.output

    ran = await conveyor("key", "list", "--instance", "--database-url", url)
    assert ran.code == 0, ran.output
    rows = {line.split()[2]: line.split() for line in ran.out.splitlines() if "pool-" in line}
    assert set(rows) == {"pool-worker", "pool-admin"}
    assert all(token not in ran.out for token in created.values()), "secrets are never listed"
    ran = await conveyor("key", "list", "--workspace", "team-a", "--database-url", url)
    assert "pool-" not in ran.out, "instance keys are no workspace's"

    worker_id = rows["pool-worker"][0]
    ran = await conveyor("key", "revoke", "--workspace", "team-a", worker_id, "--database-url", url)
    assert ran.code == 1, "an instance key is not revoked as a workspace's"
    ran = await conveyor("key", "revoke", "--instance", worker_id, "--database-url", url)
    assert ran.code == 0, ran.output
    ran = await conveyor("key", "list", "--instance", "--database-url", url)
    revoked = next(line.split() for line in ran.out.splitlines() if worker_id in line)
    assert revoked[-1] != "-", f"the worker key shows when it was revoked: {revoked}"
    admin = next(line.split() for line in ran.out.splitlines() if "pool-admin" in line)
    assert admin[-1] == "-", "the admin key is untouched"


def default_database_in(directory: Path) -> Path:
    """The `conveyor.db` a command run in `directory` uses (as the process sees its working
    directory: symbolic links resolved)."""
    return directory.resolve() / "conveyor.db"


async def test_database_commands_where_there_is_no_database_say_so_and_create_none(
    tmp_path: Path,
) -> None:
    """Run where no `conveyor.db` is (the README's `key create > worker.key` from another
    directory): one line on stderr naming the file looked for, and no file left behind."""
    looked_for = default_database_in(tmp_path)
    for command in DATABASE_COMMANDS:
        ran = await conveyor(*command, cwd=tmp_path)
        assert (ran.code, ran.out) == (1, ""), ran.output
        assert ran.err == (
            f"error: there is no database at {looked_for}: name yours with --database-url or "
            "CONVEYOR_DATABASE_URL, or, to create this one, run `conveyor migrate` or serve "
            "with --migrate\n"
        ), command
    assert not looked_for.exists(), "looking creates no database file"


def behind_the_code(url: str) -> str:
    return (
        f"error: the database {url} is at schema revision none, this Conveyor needs "
        f"{head_revision()}: run `conveyor migrate` or serve with --migrate\n"
    )


async def test_database_commands_on_a_sqlite_file_never_migrated_say_to_migrate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    url = f"sqlite:///{path}"
    for command in (("workspace", "list"), ("key", "create", "--instance", "--role", "worker")):
        ran = await conveyor(*command, "--database-url", url)
        assert (ran.code, ran.out, ran.err) == (1, "", behind_the_code(url)), command


async def test_database_commands_on_postgresql_never_migrated_or_never_created_say_so(
    postgres_server: Any,
) -> None:
    name = f"never_migrated_{os.getpid()}"
    await create_database(postgres_server.url(), name)
    try:
        url = postgres_server.url(name)
        for command in (("workspace", "list"), ("key", "list", "--instance")):
            ran = await conveyor(*command, "--database-url", url)
            assert (ran.code, ran.out, ran.err) == (1, "", behind_the_code(url)), command
    finally:
        await drop_database(postgres_server.url(), name)
    url = postgres_server.url(f"never_created_{os.getpid()}")
    for command in (
        ("workspace", "list"),
        ("migrate",),
        ("serve", "--migrate", "--port", str(free_port())),  # not an Alembic traceback
    ):
        ran = await conveyor(*command, "--database-url", url)
        assert (ran.code, ran.out) == (1, ""), (command, ran.output)
        assert ran.err == (
            f"error: the database {url} does not exist: create it (`createdb` or CREATE "
            "DATABASE), then run `conveyor migrate` or serve with --migrate\n"
        ), command


async def test_key_create_out_writes_a_new_private_file_only_once_the_key_exists(
    tmp_path: Path,
) -> None:
    url = ("--database-url", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert (await conveyor("migrate", *url)).code == 0
    assert (await conveyor("workspace", "create", "team-a", *url)).code == 0
    out = tmp_path / "keys" / "[w] worker.key"
    create = ("key", "create", "--workspace", "team-a", "--role", "worker", "--out", str(out))
    ran = await conveyor(*create, *url)
    assert (ran.code, ran.out) == (0, ""), ran.output
    assert ran.err == f"worker key for team-a written to {out} (readable by you only)\n"
    token = out.read_text()
    assert token.startswith("cvk_")
    assert token.endswith("\n")
    assert out.stat().st_mode & 0o777 == 0o600
    listed = await conveyor("key", "list", "--workspace", "team-a", *url)
    assert len(listed.out.strip().splitlines()) == 2, "a header and the one key"

    # A file that is there is never overwritten, and no key is made.
    ran = await conveyor(*create, *url)
    assert (ran.code, "exists" in ran.err) == (2, True), ran.output
    assert out.read_text() == token
    listed = await conveyor("key", "list", "--workspace", "team-a", *url)
    assert len(listed.out.strip().splitlines()) == 2, "no second key"

    # Nor is a symlink, even one pointing nowhere: the key would land where it points.
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "nowhere")
    ran = await conveyor(*create[:-1], str(dangling), *url)
    assert (ran.code, "exists" in ran.err) == (2, True), ran.output
    assert not (tmp_path / "nowhere").exists()

    # A file that cannot be written: the key, made by then, is shown once, not lost.
    blocked = tmp_path / "fresh.db" / "worker.key"  # under a file, not a directory
    ran = await conveyor(*create[:-1], str(blocked), *url)
    assert ran.code == 1, ran.output
    assert ran.out.startswith("cvk_"), "the secret on stdout"
    assert f"could not write {blocked}" in ran.err
    listed = await conveyor("key", "list", "--workspace", "team-a", *url)
    assert len(listed.out.strip().splitlines()) == 3, "the key it made, shown"

    # A key that cannot be made leaves no file behind (a shell's `> file` would).
    missing = tmp_path / "none.key"
    ran = await conveyor(
        "key", "create", "--workspace", "no-such", "--role", "worker", "--out", str(missing), *url
    )
    assert ran.code == 1, ran.output
    assert not missing.exists()


def test_a_database_command_checks_the_schema_without_importing_alembic(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """Alembic and SQLAlchemy took ~0.7 s of every database command's ~1.5 s on a 2-core
    machine, only to ask the revision: they are imported to migrate, not to look."""
    path = tmp_path / "conveyor.db"
    shutil.copyfile(sqlite_template, path)
    script = (
        "import asyncio, sys\n"
        "from conveyor.cli.shared import with_store\n"
        "from conveyor.config import Settings\n"
        f"settings = Settings.from_env(database_url={f'sqlite:///{path}'!r})\n"
        "async def nothing(store): return None\n"
        "asyncio.run(with_store(settings, nothing))\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'alembic', 'sqlalchemy'}))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], env=environment(), capture_output=True, text=True
    )
    assert (ran.returncode, ran.stdout) == (0, "[]\n"), ran.stderr
