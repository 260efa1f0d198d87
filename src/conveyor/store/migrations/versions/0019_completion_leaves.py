"""On PostgreSQL a batch of completions writes its limited jobs' leaves itself.

* `jobs_leave_limits` (0018) no longer fires for a job that leaves RUNNING for COMPLETED:
  `complete_jobs` inserts the leaves of the limited jobs it completed, in its statement,
  one INSERT for the batch. Its row trigger cost a limited completion ~20 µs a job, a
  batch of 500 some 10 ms. Every other way of leaving RUNNING (a failure, a cancel, a
  release, an expired lease) still goes through it. Only `complete_jobs` completes a job:
  the transition table lets a job reach COMPLETED from RUNNING alone, by its completion.
* `limit_leaves_wake`: a statement's new leaves wake the claimers of their workspaces, once
  a workspace, whichever statement wrote them (the row trigger's function no longer
  notifies).

SQLite is unchanged: its one writer takes a leave off the limits in its trigger.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEAVE_LIMITS = r"""
CREATE OR REPLACE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    SELECT OLD.workspace_id, OLD.concurrency_key, OLD.type
    WHERE EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = OLD.workspace_id);
    {notify}RETURN NULL;
END $$"""

POSTGRES_UPGRADE = [
    _LEAVE_LIMITS.format(notify=""),
    r"""
CREATE FUNCTION conveyor_wake_for_leaves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', w.workspace_id::text)
    FROM (SELECT DISTINCT workspace_id FROM new_leaves) AS w;
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER limit_leaves_wake AFTER INSERT ON limit_leaves
    REFERENCING NEW TABLE AS new_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_wake_for_leaves()""",
    "DROP TRIGGER IF EXISTS jobs_leave_limits ON jobs",
    r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING'
        AND NEW.status NOT IN ('RUNNING', 'COMPLETED'))
    EXECUTE FUNCTION conveyor_leave_limits()""",
]
POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS jobs_leave_limits ON jobs",
    r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING')
    EXECUTE FUNCTION conveyor_leave_limits()""",
    "DROP TRIGGER IF EXISTS limit_leaves_wake ON limit_leaves",
    "DROP FUNCTION IF EXISTS conveyor_wake_for_leaves()",
    _LEAVE_LIMITS.format(
        notify="PERFORM pg_notify('conveyor_jobs', OLD.workspace_id::text);\n    "
    ),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWNGRADE:
            op.execute(statement)
