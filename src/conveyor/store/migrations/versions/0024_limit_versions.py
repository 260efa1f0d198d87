"""Limits have a version (`limits.version`): a PUT may name the one it was decided on.

A limit's PUT sets the whole of it. Two operators changing one limit at once (one pausing
it, one raising its `max_running` from what they read before the pause) could each undo
the other's change; a PUT with `expected_version` is refused (409) when the limit changed
since it was read. The version counts changes of the limit's settings, not of its counts.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column("limits", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    op.drop_column("limits", "version")
