"""Limits keep their running count instead of counting it on every claim.

* `limits.running`: the jobs counted in the limit that run now. A job started under a limit
  (`limited`) counts in the limits of its names (its concurrency key, `type:<type>`) as it
  starts: on PostgreSQL in the claim's statement that starts it (`start_jobs`: one update
  per limit for a whole claim), on SQLite through a trigger (one writer, and a row's
  update costs there what a statement of the claim's batch would). A limit created while
  jobs of its name run marks them `limited` and counts them (`count_into_limit`); a
  `limited` job leaving RUNNING takes itself off through a trigger, whatever the statement
  that ended it (a completion, a failure, a cancel, a release, an expired lease).
* `limit_leaves`: on PostgreSQL those leaves are written here (the job's key and type, in a
  workspace that has limits), and a claim under limits folds them into the limits of those
  names under its workspace's claim lock: leavers only insert, so they never wait on each
  other or deadlock over limit rows, and `running` less the leaves of its names here is
  the count at every moment. Creating or deleting a limit folds the leaves first, so none
  of them is taken off a limit created later. SQLite has one writer: its trigger takes the
  leave off `limits.running` directly, and the table stays empty there. The trigger's
  function is `conveyor_leave_limits` (it wakes claimers as `conveyor_notify_room` did).
* `conveyor_claim_locks` / `conveyor_no_limits` (PostgreSQL): the workspaces' claim locks,
  exclusive or shared; a claim where no limit governs holds them shared while it starts,
  so a limit being created (exclusive) waits for it and counts its starts, or it sees the
  limit and starts nothing.
* `limits_notify_changed` fires only when what a limit allows changes (not its count).
* `ix_limits_types`: a workspace's type limits, which a claim reads with the limits of the
  keys it offers turns to (a workspace may have thousands of key limits).
* `ix_jobs_running_by_key` and `ix_jobs_running_by_type` go: they served the counting, and
  every start and end of every job kept them up to date.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _uuid() -> Any:
    return sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")


POSTGRES_UPGRADE = [
    "DROP TRIGGER IF EXISTS jobs_notify_room ON jobs",
    "DROP FUNCTION IF EXISTS conveyor_notify_room()",
    r"""
CREATE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
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
    # A limit's count changing is no news to claimers (a start makes no room; a fold is
    # a claim's own): only a change to what it allows wakes them.
    "DROP TRIGGER IF EXISTS limits_notify_changed ON limits",
    r"""
CREATE TRIGGER limits_notify_changed
    AFTER INSERT OR DELETE OR UPDATE OF max_running, rate_count, rate_per_seconds, paused
    ON limits FOR EACH ROW EXECUTE FUNCTION conveyor_notify_limit_changed()""",
    # The claim locks of workspaces (`take_claim_locks`), exclusive or shared, in one
    # order: creating a limit, deleting one and a claim under limits hold a workspace's
    # exclusively; a claim where no limit governs holds it shared while it starts jobs.
    r"""
CREATE FUNCTION conveyor_claim_locks(exclusive uuid[], shared uuid[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    ws uuid;
BEGIN
    FOR ws IN SELECT DISTINCT w FROM unnest(exclusive || shared) AS w ORDER BY w LOOP
        IF ws = ANY(exclusive) THEN
            PERFORM pg_advisory_xact_lock(1668247094, hashtext(ws::text));
        ELSE
            PERFORM pg_advisory_xact_lock_shared(1668247094, hashtext(ws::text));
        END IF;
    END LOOP;
END $$""",
    # Whether no limit governs any of the workspaces, asked under their shared claim
    # locks: a statement of its own in this volatile function, so it sees a limit
    # committed while the calling statement waited for the locks.
    r"""
CREATE FUNCTION conveyor_no_limits(workspaces uuid[]) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM conveyor_claim_locks('{}'::uuid[], workspaces);
    RETURN NOT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = ANY(workspaces));
END $$""",
]
POSTGRES_DOWNGRADE = [
    "DROP FUNCTION IF EXISTS conveyor_no_limits(uuid[])",
    "DROP FUNCTION IF EXISTS conveyor_claim_locks(uuid[], uuid[])",
    "DROP TRIGGER IF EXISTS limits_notify_changed ON limits",
    r"""
CREATE TRIGGER limits_notify_changed AFTER INSERT OR UPDATE OR DELETE ON limits
    FOR EACH ROW EXECUTE FUNCTION conveyor_notify_limit_changed()""",
    "DROP TRIGGER IF EXISTS jobs_leave_limits ON jobs",
    "DROP FUNCTION IF EXISTS conveyor_leave_limits()",
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
]
SQLITE_UPGRADE = [
    r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    WHEN OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'
BEGIN
    UPDATE limits SET running = running - 1
    WHERE workspace_id = OLD.workspace_id
        AND (name = OLD.concurrency_key OR name = 'type:' || OLD.type);
END""",
    r"""
CREATE TRIGGER jobs_count_in_limits AFTER UPDATE OF status ON jobs
    WHEN NEW.limited AND NEW.status = 'RUNNING' AND OLD.status <> 'RUNNING'
BEGIN
    UPDATE limits SET running = running + 1
    WHERE workspace_id = NEW.workspace_id
        AND (name = NEW.concurrency_key OR name = 'type:' || NEW.type);
END""",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS jobs_count_in_limits",
    "DROP TRIGGER IF EXISTS jobs_leave_limits",
]

# Jobs running now under an existing limit count in it from here on.
_MARK_RUNNING = """
UPDATE jobs SET limited = true
WHERE status = 'RUNNING' AND EXISTS (
    SELECT 1 FROM limits l WHERE l.workspace_id = jobs.workspace_id
        AND (l.name = jobs.concurrency_key OR l.name = 'type:' || jobs.type)
)"""
_COUNT_RUNNING = """
UPDATE limits SET running = (
    SELECT count(*) FROM jobs j
    WHERE j.workspace_id = limits.workspace_id AND j.status = 'RUNNING'
        AND (j.concurrency_key = limits.name OR 'type:' || j.type = limits.name)
)"""


def upgrade() -> None:
    with op.batch_alter_table("limits") as batch:
        batch.add_column(
            sa.Column("running", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    op.create_table(
        "limit_leaves",
        sa.Column("workspace_id", _uuid(), nullable=False),
        sa.Column("concurrency_key", sa.String(200), nullable=True),
        sa.Column("type", sa.String(100), nullable=False),
    )
    op.create_index("ix_limit_leaves", "limit_leaves", ["workspace_id"])
    typed = sa.text("substr(name, 1, 5) = 'type:'")
    op.create_index(
        "ix_limits_types",
        "limits",
        ["workspace_id", "name"],
        postgresql_where=typed,
        sqlite_where=typed,
    )
    op.execute(_MARK_RUNNING)
    op.execute(_COUNT_RUNNING)
    op.drop_index("ix_jobs_running_by_key", table_name="jobs")
    op.drop_index("ix_jobs_running_by_type", table_name="jobs")
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_UPGRADE if dialect == "postgresql" else SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in POSTGRES_DOWNGRADE if dialect == "postgresql" else SQLITE_DOWNGRADE:
        op.execute(statement)
    running = sa.text("status = 'RUNNING'")
    op.create_index(
        "ix_jobs_running_by_type",
        "jobs",
        ["workspace_id", "type"],
        postgresql_where=running,
        sqlite_where=running,
    )
    running_keyed = sa.text("status = 'RUNNING' AND concurrency_key IS NOT NULL")
    op.create_index(
        "ix_jobs_running_by_key",
        "jobs",
        ["workspace_id", "concurrency_key"],
        postgresql_where=running_keyed,
        sqlite_where=running_keyed,
    )
    op.drop_index("ix_limits_types", table_name="limits")
    op.drop_index("ix_limit_leaves", table_name="limit_leaves")
    op.drop_table("limit_leaves")
    with op.batch_alter_table("limits") as batch:
        batch.drop_column("running")
