"""Secret files (API keys): made new, 0600 from the start whatever the umask, never
written through a symlink, and nothing left behind by a write that fails."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.private_files import write_private


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    before = os.umask(0)  # the permissions must not depend on the caller's umask
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_its_owners_alone_in_a_directory_made_for_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "worker.key"
    write_private(path, "cvk_secret\n", replace=False)
    assert path.read_text() == "cvk_secret\n"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_a_file_that_is_there_is_refused_unless_replaced(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    path.write_text("someone else's\n")
    path.chmod(0o644)
    with pytest.raises(FileExistsError):
        write_private(path, "cvk_new\n", replace=False)
    assert path.read_text() == "someone else's\n"
    write_private(path, "cvk_new\n", replace=True)
    assert (path.read_text(), mode(path)) == ("cvk_new\n", 0o600), "a new file, not the 0644"
    assert [p.name for p in tmp_path.iterdir()] == ["admin.key"], "no temporary left"


def test_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    link = tmp_path / "admin.key"
    link.symlink_to(target)
    dangling = tmp_path / "worker.key"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (link, dangling):
        with pytest.raises(FileExistsError):
            write_private(path, "cvk_secret\n", replace=False)
    assert not (tmp_path / "nowhere").exists()
    write_private(link, "cvk_secret\n", replace=True)
    assert target.read_text() == "untouched\n"
    assert not link.is_symlink()
    assert (link.read_text(), mode(link)) == ("cvk_secret\n", 0o600)


def test_a_write_that_fails_leaves_no_file(tmp_path: Path) -> None:
    for replace in (False, True):
        path = tmp_path / f"replace-{replace}.key"
        with pytest.raises(UnicodeEncodeError):
            write_private(path, "cvk_\udc80", replace=replace)  # not UTF-8: fails mid-write
        assert list(tmp_path.iterdir()) == []
