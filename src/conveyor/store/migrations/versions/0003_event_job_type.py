"""Events carry their job's type, so workspace streams can be filtered by it without a
lookup per event.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column("job_type", sa.String(100), nullable=False, server_default=sa.text("''"))
        )
    op.execute("UPDATE events SET job_type = (SELECT type FROM jobs WHERE jobs.id = events.job_id)")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("job_type")
