"""Administration straight on the database: migrate, workspaces, keys."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import conveyor


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
