"""A batch of completions writes its limits' leaves in one insert (PostgreSQL).

Until now each `limited` job leaving RUNNING took itself off its limits through a row
trigger (`jobs_leave_limits`): a PL/pgSQL call and a one-row INSERT per job, which doubled
the cost of completing a batch of limited jobs. Now:

* `complete_jobs` locks the batch's rows, clears `limited` as it completes them and inserts
  the leaves of those that were limited in the same statement, one INSERT for the batch.
* `jobs_leave_limits` fires only for a job that leaves RUNNING still `limited`: every other
  ending (a failure, a cancel, a release, an expired lease, a completion decided on a fresh
  read of the job) writes its leave through it as before. A statement that clears
  `limited` as it ends a job owes its leave itself; only `complete_jobs` does.
* Claimers are woken by a statement trigger on `limit_leaves` (`limit_leaves_wake`), for
  each workspace whose jobs left: once for a batch's insert, once for each leave the row
  trigger writes (its INSERT is a statement of its own). It fires for a batch that
  inserts no leaves too (a PL/pgSQL call over an empty transition table).
* The leave no longer asks whether its workspace still has limits: a job is `limited` only
  if a limit of its names existed when it started (or was created while it ran), so a
  leave of a workspace without limits is one of a job that ran limited when its last limit
  went; it is folded away when a limit comes (creating one folds first).

SQLite is unchanged: one writer, and its trigger takes each leave off the limits at once.

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

POSTGRES_UPGRADE = [
    "DROP TRIGGER IF EXISTS jobs_leave_limits ON jobs",
    r"""
CREATE OR REPLACE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    VALUES (OLD.workspace_id, OLD.concurrency_key, OLD.type);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (OLD.limited AND NEW.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING')
    EXECUTE FUNCTION conveyor_leave_limits()""",
    r"""
CREATE FUNCTION conveyor_wake_on_leaves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', left_in.workspace_id::text)
    FROM (SELECT DISTINCT workspace_id FROM new_leaves) left_in;
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER limit_leaves_wake AFTER INSERT ON limit_leaves
    REFERENCING NEW TABLE AS new_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_wake_on_leaves()""",
]
POSTGRES_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS limit_leaves_wake ON limit_leaves",
    "DROP FUNCTION IF EXISTS conveyor_wake_on_leaves()",
    "DROP TRIGGER IF EXISTS jobs_leave_limits ON jobs",
    r"""
CREATE OR REPLACE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    SELECT OLD.workspace_id, OLD.concurrency_key, OLD.type
    WHERE EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = OLD.workspace_id);
    PERFORM pg_notify('conveyor_jobs', OLD.workspace_id::text);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING')
    EXECUTE FUNCTION conveyor_leave_limits()""",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRES_DOWNGRADE:
            op.execute(statement)
