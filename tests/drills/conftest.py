"""Fixtures of the drills (the rest is in `drill.py` and `observe.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conveyor.store.urls import DatabaseURL


@pytest.fixture
def sqlite_database(sqlite_template: Path, tmp_path: Path) -> DatabaseURL:
    """A migrated SQLite file of this test's own, for drills that are about SQLite only."""
    path = tmp_path / "conveyor.db"
    shutil.copyfile(sqlite_template, path)
    return DatabaseURL.parse(f"sqlite:///{path}")
