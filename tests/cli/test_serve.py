"""`conveyor serve` refusing to start: nothing is printed as started, nothing is registered."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

from tests.cli.helpers import conveyor
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
