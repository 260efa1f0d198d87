"""`conveyor serve` refusing to start: nothing is printed as started, nothing is registered."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import stat
from pathlib import Path

from tests.cli.helpers import conveyor, start
from tests.support.postgres import free_port


async def test_serve_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()  # a database, at no schema revision
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    ran = await conveyor("serve", "--database-url", url, "--port", str(free_port()))
    assert ran.code == 1
    assert "conveyor migrate" in ran.err


async def test_serve_without_keys_only_on_loopback() -> None:
    ran = await conveyor(
        "serve", "--insecure-local", "--host", "0.0.0.0", "--port", str(free_port())
    )
    assert ran.code == 1
    assert "loopback" in ran.err


async def test_serve_on_a_port_in_use_says_so_and_starts_nothing(tmp_path: Path) -> None:
    database = tmp_path / "tmp.db"
    url = f"sqlite:///{database}"
    migrated = await conveyor("migrate", "--database-url", url)
    assert migrated.code == 0, migrated.output
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        ran = await conveyor(
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
            "--handlers",
            "conveyor.worker.examples:handlers",
            "--database-url",
            url,
            "--migrate",
            cwd=tmp_path,
        )
    assert ran.code != 0
    assert [line for line in ran.err.splitlines() if line.strip()] == [
        f"error: port {port} is in use on 127.0.0.1"
    ], ran.output
    assert "Conveyor on" not in ran.output
    assert not (tmp_path / "conveyor-admin.key").exists(), "no admin key issued"
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT worker_id FROM workers").fetchall() == []
        assert connection.execute("SELECT count(*) FROM workspaces").fetchone() == (0,)


async def first_start(tmp_path: Path, env: dict[str, str] | None = None) -> str:
    """`conveyor serve --migrate` on a new database in `tmp_path`, until it says it serves;
    what it printed to stdout by then."""
    server = await start(
        "serve", "--migrate", "--port", str(free_port()), "--workers", "0",
        "--database-url", f"sqlite:///{tmp_path / 'first.db'}",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert server.stdout is not None
    printed = ""
    try:
        while "Conveyor on" not in printed:
            line = await asyncio.wait_for(server.stdout.readline(), 30)
            assert line, f"serve ended before it served:\n{printed}"
            printed += line.decode()
    finally:
        server.terminate()
        await server.wait()
    return printed


async def test_first_start_saves_the_admin_key_its_owners_alone_or_shows_it(
    tmp_path: Path,
) -> None:
    """The admin key file replaces one that is there (a new 0600 file, never the old one
    written into); one that cannot be written is said, and the key is shown all the same."""
    (tmp_path / "conveyor-admin.key").write_text("an old key\n")
    (tmp_path / "conveyor-admin.key").chmod(0o644)
    printed = await first_start(tmp_path)
    assert "saved to conveyor-admin.key (readable only by you)" in printed, printed
    token = (tmp_path / "conveyor-admin.key").read_text().strip()
    assert f"  {token}\n" in printed
    assert stat.S_IMODE((tmp_path / "conveyor-admin.key").stat().st_mode) == 0o600

    # Deep enough that the message is longer than any terminal line: it is not broken
    # into lines (rich wrapped it at 80 columns, splitting "store it now" or the path).
    elsewhere = tmp_path / ("again-" + "d" * 60)
    elsewhere.mkdir()
    (elsewhere / "blocker").write_text("a file, not a directory\n")
    blocked = elsewhere / "blocker" / "admin.key"
    printed = await first_start(elsewhere, {"CONVEYOR_ADMIN_KEY_FILE": str(blocked)})
    said = next(line for line in printed.splitlines() if line.startswith("First start"))
    assert f"could not be saved to {blocked}" in said, said
    assert said.endswith("store it now."), said
    assert re.search(r"^  cvk_\S+$", printed, re.MULTILINE), "the key, shown once"
