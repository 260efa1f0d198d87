"""Secrets written to files only their owner can read (an API key's token)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600
NEW_ONLY = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path`, readable and writable by its owner only from the moment it
    exists, and on disk (fsync) before this returns. The file is always made new, never
    through a symlink: `replace=False` refuses a path that is there (FileExistsError), so
    a key never lands in a file someone else prepared nor overwrites another key;
    `replace=True` writes a new file beside it and renames it over the path. A write that
    fails leaves no file of its own behind. Directories made for it are the owner's."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = path.with_name(f".{path.name}.{os.getpid()}.new") if replace else path
    descriptor = os.open(target, NEW_ONLY, PRIVATE)
    try:
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), PRIVATE)  # whatever the umask
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(target, path)
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()
        raise
