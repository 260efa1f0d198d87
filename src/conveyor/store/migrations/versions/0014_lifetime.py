"""Lifetime: per-workspace settings (retention), the pruner's index, and what it deleted.

* `workspaces.settings`: a JSON document of what the workspace sets for itself (NULL:
  everything is the instance's default).
* `ix_jobs_workspace_finished` (workspace, status, completed_at) replaces
  `ix_jobs_workspace_completed` (workspace, completed_at): the pruner selects one final
  status at a time with its own cut-off, oldest first; the throughput query reads each
  final status as a range. One index for one: finishing a job writes as many entries as
  before.
* `workspace_pruning`: per workspace, the furthest stream position and the highest event id
  the pruner deleted, so a stream resumed behind them is told so.
* PostgreSQL: `jobs`, `events` and `steps` are vacuumed sooner than the defaults would
  (at 2 % dead rather than 20 %, unthrottled): see docs/architecture.md.
* SQLite: `events.id` becomes AUTOINCREMENT (the table is rebuilt, once): event ids are
  stream positions, and without it SQLite hands out max(id) + 1 again once the newest
  events are pruned. PostgreSQL's sequence never goes back.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = sa.text("completed_at IS NOT NULL")
UUID = sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")
QUEUE_TABLES = ("jobs", "events", "steps")
AUTOVACUUM = (
    "autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 1000, "
    "autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0"
)
AUTOVACUUM_NAMES = (
    "autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, "
    "autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_cost_delay"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in QUEUE_TABLES:
            op.execute(f"ALTER TABLE {table} SET ({AUTOVACUUM})")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "events", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("settings", sa.Text(), nullable=True))
    op.drop_index("ix_jobs_workspace_completed", table_name="jobs")
    op.create_index(
        "ix_jobs_workspace_finished",
        "jobs",
        ["workspace_id", "status", "completed_at"],
        postgresql_where=FINISHED,
        sqlite_where=FINISHED,
    )
    op.create_table(
        "workspace_pruning",
        sa.Column(
            "workspace_id",
            UUID,
            sa.ForeignKey(
                "workspaces.id", ondelete="CASCADE", name="fk_workspace_pruning_workspace"
            ),
            primary_key=True,
        ),
        sa.Column("event_tx", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("highest_event_id", sa.BigInteger(), nullable=False),
        sa.Column("jobs_pruned", sa.BigInteger(), nullable=False),
        sa.Column("pruned_at", TIMESTAMP, nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in QUEUE_TABLES:
            op.execute(f"ALTER TABLE {table} RESET ({AUTOVACUUM_NAMES})")
    op.drop_table("workspace_pruning")
    op.drop_index("ix_jobs_workspace_finished", table_name="jobs")
    op.create_index(
        "ix_jobs_workspace_completed",
        "jobs",
        ["workspace_id", "completed_at"],
        postgresql_where=FINISHED,
        sqlite_where=FINISHED,
    )
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("settings")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "events", recreate="always", table_kwargs={"sqlite_autoincrement": False}
        ):
            pass
