"""A failure's detail (a traceback) beside its error; the job types each worker serves.

`jobs.error_detail` keeps what a worker says of a failure beyond its one-line error.
`workers.types` (a JSON array; NULL: any type) and `workers.stale_after_seconds` let the
overview name queued types no live worker serves, and show workers gone quiet as stopped.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("error_detail", sa.Text(), nullable=True))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("types", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "stale_after_seconds", sa.Float(), nullable=False, server_default=sa.text("90")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("stale_after_seconds")
        batch.drop_column("types")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("error_detail")
