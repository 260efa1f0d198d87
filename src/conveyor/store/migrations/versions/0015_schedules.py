"""Schedules: cron rules that create jobs, and each schedule's history of runs.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "workspace_id",
            UUID,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_schedules_workspace"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("job_type", sa.String(100), nullable=False),
        sa.Column("job_payload", JSON, nullable=False),
        sa.Column("job_priority", sa.SmallInteger(), nullable=False),
        sa.Column("job_max_attempts", sa.Integer(), nullable=False),
        sa.Column("job_timeout_seconds", sa.Float(), nullable=True),
        sa.Column("job_concurrency_key", sa.String(200), nullable=True),
        sa.Column("overlap", sa.String(8), nullable=False),
        sa.Column("catch_up", sa.String(8), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", TIMESTAMP, nullable=True),
        sa.Column("last_run_at", TIMESTAMP, nullable=True),
        sa.Column("last_job_id", UUID, nullable=True),
        sa.Column("last_skipped_at", TIMESTAMP, nullable=True),
        sa.Column("last_skip_reason", sa.String(16), nullable=True),
        sa.Column("firing_tick", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.UniqueConstraint("workspace_id", "name", name="uq_schedules_workspace_name"),
        sa.CheckConstraint("overlap IN ('allow', 'skip')", name="ck_schedules_overlap"),
        sa.CheckConstraint("catch_up IN ('none', 'latest')", name="ck_schedules_catch_up"),
        sa.CheckConstraint(
            "last_skip_reason IN ('overlap', 'missed')", name="ck_schedules_last_skip_reason"
        ),
        sa.CheckConstraint("job_priority BETWEEN 1 AND 10", name="ck_schedules_job_priority"),
    )
    op.create_index(
        "ix_schedules_next_run",
        "schedules",
        ["next_run_at"],
        postgresql_where=sa.text("next_run_at IS NOT NULL"),
        sqlite_where=sa.text("next_run_at IS NOT NULL"),
    )
    op.create_index(
        "ix_schedules_firing",
        "schedules",
        ["firing_tick"],
        postgresql_where=sa.text("firing_tick IS NOT NULL"),
        sqlite_where=sa.text("firing_tick IS NOT NULL"),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "schedule_id",
            UUID,
            sa.ForeignKey("schedules.id", ondelete="CASCADE", name="fk_schedule_runs_schedule"),
            nullable=False,
        ),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("tick", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("job_id", UUID, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "outcome IN ('fired', 'triggered', 'skipped_overlap', 'missed')",
            name="ck_schedule_runs_outcome",
        ),
    )
    op.create_index("ix_schedule_runs_schedule", "schedule_runs", ["schedule_id", "id"])
    op.create_index("ix_schedule_runs_created", "schedule_runs", ["workspace_id", "created_at"])
    op.create_index(
        "uq_schedule_runs_tick",
        "schedule_runs",
        ["schedule_id", "tick"],
        unique=True,
        postgresql_where=sa.text("tick IS NOT NULL"),
        sqlite_where=sa.text("tick IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_schedule_runs_tick", table_name="schedule_runs")
    op.drop_index("ix_schedule_runs_created", table_name="schedule_runs")
    op.drop_index("ix_schedule_runs_schedule", table_name="schedule_runs")
    op.drop_table("schedule_runs")
    op.drop_index("ix_schedules_firing", table_name="schedules")
    op.drop_index("ix_schedules_next_run", table_name="schedules")
    op.drop_table("schedules")
