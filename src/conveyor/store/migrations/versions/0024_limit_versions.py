"""Limits have a version (`limits.version`): a PUT may name the one it was decided on.

A limit's PUT sets the whole of it. Two operators changing one limit at once (one pausing
it, one raising its `max_running` from what they read before the pause) could each undo
the other's change; a PUT with `expected_version` is refused (409) when the limit changed
since it was read. The version changes with the limit's settings, not its counts: each
PUT takes the workspace's next (`workspaces.limit_versions`), so a limit deleted and made
again never comes back at a version someone read before the delete.

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
    # Constant defaults: PostgreSQL adds the columns without rewriting the tables. The
    # limits there are at version 1, the last their workspace gave.
    op.add_column("limits", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(
        "workspaces",
        sa.Column("limit_versions", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE workspaces SET limit_versions = 1"
        " WHERE EXISTS (SELECT 1 FROM limits WHERE limits.workspace_id = workspaces.id)"
    )


def downgrade() -> None:
    op.drop_column("workspaces", "limit_versions")
    op.drop_column("limits", "version")
