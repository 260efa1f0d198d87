"""Capacity: instance keys, workspace weights, concurrency-key groups, limits.

* `api_keys.workspace_id` may be NULL: an instance key (worker or admin) belongs to no
  workspace and may claim (or administer) in every one.
* `workspaces.weight`: fair claims give a workspace turns in proportion to it.
* `ix_jobs_claimable` gains the concurrency key after the workspace: each group (a
  workspace and key; no key is a group of its own) is read most urgent first, and the
  groups with claimable work are found by skipping through it. `ix_jobs_due` (by due time
  alone: see tables.py) finds the next due job, for a waiting claim's timer. Running jobs
  are counted by key and by type for the limits.
* `limits` and `limit_starts` (the starts a rate window counts).
* `jobs.limited`: started under a limit. On PostgreSQL, when such a job leaves RUNNING, or
  a limit changes, claimers of its workspace are woken (NOTIFY conveyor_jobs): room may
  have appeared.

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> Any:
    return sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")


def _uuid() -> Any:
    return sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")


POSTGRES_UPGRADE = [
    r"""
CREATE FUNCTION conveyor_notify_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', OLD.workspace_id::text);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER jobs_notify_room AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING')
    EXECUTE FUNCTION conveyor_notify_room()""",
    r"""
CREATE FUNCTION conveyor_notify_limit_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', COALESCE(NEW.workspace_id, OLD.workspace_id)::text);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER limits_notify_changed AFTER INSERT OR UPDATE OR DELETE ON limits
    FOR EACH ROW EXECUTE FUNCTION conveyor_notify_limit_changed()""",
]
POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS limits_notify_changed ON limits",
    "DROP FUNCTION IF EXISTS conveyor_notify_limit_changed()",
    "DROP TRIGGER IF EXISTS jobs_notify_room ON jobs",
    "DROP FUNCTION IF EXISTS conveyor_notify_room()",
]


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("weight", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.create_check_constraint("ck_workspaces_weight", "weight BETWEEN 1 AND 1000")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("workspace_id", existing_type=_uuid(), nullable=True)
        batch.create_check_constraint(
            "ck_api_keys_instance_role", "workspace_id IS NOT NULL OR role IN ('worker', 'admin')"
        )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("limited", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.drop_index("ix_jobs_claimable", table_name="jobs")
    queued = sa.text("status = 'QUEUED'")
    op.create_index(
        "ix_jobs_claimable",
        "jobs",
        ["workspace_id", "concurrency_key", "priority", "run_at", "id"],
        postgresql_where=queued,
        sqlite_where=queued,
    )
    op.create_index(
        "ix_jobs_due",
        "jobs",
        ["run_at"],
        postgresql_where=queued,
        sqlite_where=queued,
    )
    running_keyed = sa.text("status = 'RUNNING' AND concurrency_key IS NOT NULL")
    op.create_index(
        "ix_jobs_running_by_key",
        "jobs",
        ["workspace_id", "concurrency_key"],
        postgresql_where=running_keyed,
        sqlite_where=running_keyed,
    )
    running = sa.text("status = 'RUNNING'")
    op.create_index(
        "ix_jobs_running_by_type",
        "jobs",
        ["workspace_id", "type"],
        postgresql_where=running,
        sqlite_where=running,
    )
    op.create_table(
        "limits",
        sa.Column("workspace_id", _uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column("rate_count", sa.Integer(), nullable=True),
        sa.Column("rate_per_seconds", sa.Float(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], ondelete="CASCADE", name="fk_limits_workspace"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "name"),
        sa.CheckConstraint(
            "(rate_count IS NULL) = (rate_per_seconds IS NULL)", name="ck_limits_rate_whole"
        ),
    )
    op.create_table(
        "limit_starts",
        sa.Column("workspace_id", _uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
    )
    op.create_index(
        "ix_limit_starts_window", "limit_starts", ["workspace_id", "name", "started_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWNGRADE:
            op.execute(statement)
    op.drop_index("ix_limit_starts_window", table_name="limit_starts")
    op.drop_table("limit_starts")
    op.drop_table("limits")
    for name in ("ix_jobs_running_by_type", "ix_jobs_running_by_key", "ix_jobs_due"):
        op.drop_index(name, table_name="jobs")
    op.drop_index("ix_jobs_claimable", table_name="jobs")
    queued = sa.text("status = 'QUEUED'")
    op.create_index(
        "ix_jobs_claimable",
        "jobs",
        ["workspace_id", "priority", "run_at", "id"],
        postgresql_where=queued,
        sqlite_where=queued,
    )
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("limited")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("ck_api_keys_instance_role", type_="check")
        batch.alter_column("workspace_id", existing_type=_uuid(), nullable=False)
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint("ck_workspaces_weight", type_="check")
        batch.drop_column("weight")
