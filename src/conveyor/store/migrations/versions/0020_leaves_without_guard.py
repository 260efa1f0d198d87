"""A limited job's leave is written without asking whether its workspace has limits.

Migration 0018's trigger (`conveyor_leave_limits`, PostgreSQL) wrote a job's leave only if
its workspace still had a limit: a query of its own for every job that left, which cost
more than the leave itself (a completion batch of 500 limited jobs took 7 ms where one of
unlimited jobs takes 1.5; the leave alone takes 4).

The question is now answered once, where it changes: `limited` means a limit of the job's
names exists while it runs. A claim sets it as the job starts (`start_jobs`), creating a
limit sets it on the jobs of its name that run (`count_into_limit`), and now deleting a
limit clears it on the running jobs none of whose names has one left
(`count_out_of_limits`), and a job moved to RUNNING other than by a claim (which only
happens where no limit governs it) counts in none (store/changes.py). This migration
clears it on the running jobs it is already untrue of (a limit deleted while they ran,
under 0018), and drops the leaves no fold would ever take: those of workspaces without a
limit.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEAVE = r"""
CREATE OR REPLACE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {insert};
    PERFORM pg_notify('conveyor_jobs', OLD.workspace_id::text);
    RETURN NULL;
END $$"""
_UNGUARDED = """INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    VALUES (OLD.workspace_id, OLD.concurrency_key, OLD.type)"""
_GUARDED = """INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    SELECT OLD.workspace_id, OLD.concurrency_key, OLD.type
    WHERE EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = OLD.workspace_id)"""

_COUNT_OUT = """
UPDATE jobs SET limited = false
WHERE status = 'RUNNING' AND limited AND NOT EXISTS (
    SELECT 1 FROM limits l WHERE l.workspace_id = jobs.workspace_id
        AND (l.name = jobs.concurrency_key OR l.name = 'type:' || jobs.type)
)"""
_STRAY_LEAVES = """
DELETE FROM limit_leaves
WHERE NOT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = limit_leaves.workspace_id)"""


def upgrade() -> None:
    op.execute(_COUNT_OUT)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_STRAY_LEAVES)
        op.execute(_LEAVE.format(insert=_UNGUARDED))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_LEAVE.format(insert=_GUARDED))
