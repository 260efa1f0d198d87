"""Each job keeps the lease length its claim (or start) asked for (`jobs.lease_seconds`).

A heartbeat that names no `lease_seconds` renews the lease for that long. Before, it
renewed it for the API's default (30 s) whatever the claim had asked: a job claimed for
300 s and kept alive by such heartbeats had 30 s left after the first one, and a worker
heartbeating every minute lost it to the reaper. Jobs already running keep the default
until their next claim.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "jobs", sa.Column("lease_seconds", sa.Float(), nullable=False, server_default="30")
    )


def downgrade() -> None:
    # Not a batch (a copy of the table): SQLite drops a plain column in place, and the
    # table's triggers stay.
    op.drop_column("jobs", "lease_seconds")
