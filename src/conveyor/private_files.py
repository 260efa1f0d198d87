"""Secrets written to files only their owner can read (an API key's token)."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write `text` to `path`, readable and writable by its owner only (0600) from the
    moment it exists. `replace=False` refuses a file that is there (FileExistsError): a
    key must not land in a file someone else prepared, nor overwrite another key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    descriptor = os.open(path, mode, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)  # a file replaced keeps the mode it had
