"""Events lose their foreign key to jobs.

An event row is only ever inserted by the statement (or transaction) that has just written
its job's row — `RETURNING` hands the job id to the INSERT — and jobs are never deleted,
so the check could not catch anything the code can race on. It cost about 3 µs per event,
a quarter of the time PostgreSQL spent creating a job (two events each). Steps keep theirs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("fk_events_job", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.create_foreign_key("fk_events_job", "jobs", ["job_id"], ["id"], ondelete="CASCADE")
