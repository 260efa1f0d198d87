"""Jobs lose their foreign key to workspaces.

A job row is only ever inserted for the workspace its caller was authenticated in (read
from `workspaces` for that request), and Conveyor never deletes a workspace, so the check
could not catch anything the code can race on. On PostgreSQL it ran once per job row: 2.8
of the 18 µs the database spent creating a job in a bulk insert (one job row and its two
events). API keys, workers and sessions keep theirs; steps keep theirs to jobs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_workspace", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.create_foreign_key(
            "fk_jobs_workspace", "workspaces", ["workspace_id"], ["id"], ondelete="CASCADE"
        )
