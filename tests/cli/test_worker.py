"""`conveyor worker`'s key: exactly one, readable, from a flag, a file or the environment."""

from __future__ import annotations

from pathlib import Path

from tests.cli.helpers import conveyor

HANDLERS = ("--handlers", "tests.worker.handlers_for_tests:handlers")


async def test_worker_needs_exactly_one_readable_key(tmp_path: Path) -> None:
    ran = await conveyor("worker", *HANDLERS, cwd=tmp_path)
    assert (ran.code, "no API key" in ran.err) == (1, True), ran.output
    missing = tmp_path / "absent.key"
    ran = await conveyor("worker", "--key-file", str(missing), *HANDLERS)
    assert (ran.code, "cannot read the key file" in ran.err) == (1, True), ran.output
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    ran = await conveyor("worker", "--key-file", str(empty), *HANDLERS)
    assert (ran.code, "is empty" in ran.err) == (1, True), ran.output
    ran = await conveyor("worker", "--key", "cvk_x", "--key-file", str(empty), *HANDLERS)
    assert (ran.code, "not both" in ran.err) == (1, True), ran.output
    ran = await conveyor(
        "worker", *HANDLERS, env={"CONVEYOR_API_KEY_FILE": str(missing)}, cwd=tmp_path
    )
    assert (ran.code, "cannot read the key file" in ran.err) == (1, True), ran.output
