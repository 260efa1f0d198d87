"""One history entry per job a schedule's trigger made.

A trigger ("run now") creates its job and then records it (the schedule's last run and an
entry in its history). A server that stopped between the two left the job unrecorded, and
the caller's retry with the same token found the job and recorded nothing. The trigger
now records on every attempt, and this index makes the record once per job: a retry, or
two at once, adds no second entry. No database has two entries of one job to clear first:
until now a trigger recorded only the job it had just created.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = sa.text("tick IS NULL")


def upgrade() -> None:
    op.create_index(
        "uq_schedule_runs_trigger",
        "schedule_runs",
        ["schedule_id", "job_id"],
        unique=True,
        postgresql_where=_TRIGGERS,
        sqlite_where=_TRIGGERS,
    )


def downgrade() -> None:
    op.drop_index("uq_schedule_runs_trigger", table_name="schedule_runs")
