"""A limited job's leave is written without asking whether its workspace has limits.

Migration 0018's trigger (`conveyor_leave_limits`, PostgreSQL) wrote a job's leave only if
its workspace still had a limit: a query of its own for every job that left, which cost as
much as the leave and its notify together (a scratch table of running jobs completed in
batches of 500: 6.8 to 6.9 ms a batch with the question, 4.1 without, 1.5 with no trigger; see
docs/benchmarks.md, stop 32).

The question is now answered once, where it changes: `limited` means a limit of the job's
names exists while it runs. A claim sets it as the job starts (`start_jobs`), creating a
limit sets it on the jobs of its name that run (`count_into_limit`), and now deleting a
limit clears it on the running jobs none of whose names has one left
(`count_out_of_limits`), and a job moved to RUNNING other than by a claim (which only
happens where no limit governs it) counts in none (store/changes.py). This migration
clears it on the running jobs it is already untrue of (a limit deleted while they ran,
under 0018), and drops the leaves of workspaces without a limit (they only waited for the
next limit created there to discard them).

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

_UNGOVERNED = """status = 'RUNNING' AND limited AND NOT EXISTS (
    SELECT 1 FROM limits l WHERE l.workspace_id = jobs.workspace_id
        AND (l.name = jobs.concurrency_key OR l.name = 'type:' || jobs.type)
)"""
# On PostgreSQL, under the claim locks of every workspace with limited running jobs (those
# where the flag may be untrue, or become so meanwhile), as deleting a limit does: a limit
# of a job's name created meanwhile has counted it (then the update, a statement of its
# own, sees the limit) or waits for this migration.
_LOCK_UNGOVERNED = """
SELECT conveyor_claim_locks(COALESCE(array_agg(DISTINCT workspace_id), '{}'), '{}')
FROM jobs WHERE status = 'RUNNING' AND limited"""
_COUNT_OUT = f"UPDATE jobs SET limited = false WHERE {_UNGOVERNED}"
_STRAY_LEAVES = """
DELETE FROM limit_leaves
WHERE NOT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = limit_leaves.workspace_id)"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(_LOCK_UNGOVERNED)
    op.execute(_COUNT_OUT)
    if postgres:
        op.execute(_STRAY_LEAVES)
        op.execute(_LEAVE.format(insert=_UNGUARDED))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_LEAVE.format(insert=_GUARDED))
