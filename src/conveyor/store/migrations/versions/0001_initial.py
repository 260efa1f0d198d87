"""Workspaces, API keys, jobs, steps and events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out here rather than imported, so this migration never changes when
# the models do.
UUID = sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
QUEUED_ONLY = sa.text("status = 'QUEUED'")
RUNNING_ONLY = sa.text("status = 'RUNNING'")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "workspace_id",
            UUID,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_api_keys_workspace"),
            nullable=False,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("role IN ('client', 'worker', 'admin')", name="ck_api_keys_role"),
    )
    op.create_index("ix_api_keys_workspace", "api_keys", ["workspace_id"])

    op.create_table(
        "jobs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "workspace_id",
            UUID,
            sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_jobs_workspace"),
            nullable=False,
        ),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress_percent", sa.SmallInteger(), nullable=False),
        sa.Column("agent_task_id", sa.String(200), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", TIMESTAMP, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("lease_id", UUID, nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("retry_of", UUID, nullable=True),
        sa.Column("retry_backoff_seconds", sa.Float(), nullable=False),
        sa.Column("retry_backoff_max_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
        sa.Column("last_step_ordinal", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED')",
            name="ck_jobs_status",
        ),
        sa.CheckConstraint("priority BETWEEN 1 AND 10", name="ck_jobs_priority"),
        sa.CheckConstraint("progress_percent BETWEEN 0 AND 100", name="ck_jobs_progress"),
        sa.CheckConstraint("attempt >= 1 AND max_attempts >= 1", name="ck_jobs_attempts"),
        sa.CheckConstraint(
            "status <> 'RUNNING' OR (lease_id IS NOT NULL AND lease_expires_at IS NOT NULL)",
            name="ck_jobs_running_has_lease",
        ),
    )
    op.create_index(
        "ix_jobs_claimable",
        "jobs",
        ["workspace_id", "priority", "run_at", "id"],
        postgresql_where=QUEUED_ONLY,
        sqlite_where=QUEUED_ONLY,
    )
    op.create_index(
        "ix_jobs_lease_expiry",
        "jobs",
        ["lease_expires_at"],
        postgresql_where=RUNNING_ONLY,
        sqlite_where=RUNNING_ONLY,
    )
    op.create_index("ix_jobs_workspace_created", "jobs", ["workspace_id", "created_at", "id"])
    op.create_index("ix_jobs_workspace_status", "jobs", ["workspace_id", "status", "created_at"])
    op.create_index("ix_jobs_workspace_type", "jobs", ["workspace_id", "type", "created_at"])
    op.create_index(
        "ix_jobs_workspace_agent_task",
        "jobs",
        ["workspace_id", "agent_task_id"],
        postgresql_where=sa.text("agent_task_id IS NOT NULL"),
        sqlite_where=sa.text("agent_task_id IS NOT NULL"),
    )
    op.create_index(
        "uq_jobs_idempotency_key",
        "jobs",
        ["workspace_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "steps",
        sa.Column("id", UUID, primary_key=True),
        sa.Column(
            "job_id",
            UUID,
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_steps_job"),
            nullable=False,
        ),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("completed_at", TIMESTAMP, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("tokens_input", sa.BigInteger(), nullable=True),
        sa.Column("tokens_output", sa.BigInteger(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.UniqueConstraint("job_id", "ordinal", name="uq_steps_job_ordinal"),
        sa.CheckConstraint(
            "phase IN ('SETUP', 'EXECUTION', 'VALIDATION', 'CLEANUP')", name="ck_steps_phase"
        ),
        sa.CheckConstraint(
            "type IN ('COMMAND', 'AI_ACTION', 'GATE', 'ARTIFACT')", name="ck_steps_type"
        ),
        sa.CheckConstraint(
            "status IN ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'SKIPPED')",
            name="ck_steps_status",
        ),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "job_id",
            UUID,
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_events_job"),
            nullable=False,
        ),
        sa.Column("workspace_id", UUID, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step_id", UUID, nullable=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),
    )
    op.create_index("ix_events_workspace", "events", ["workspace_id", "id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("steps")
    op.drop_table("jobs")
    op.drop_table("api_keys")
    op.drop_table("workspaces")
