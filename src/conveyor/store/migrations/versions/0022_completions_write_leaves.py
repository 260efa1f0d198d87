"""A completion takes its limited jobs off their limits itself.

Migration 0018's trigger (`jobs_leave_limits`) took each limited job off its limits as it
left RUNNING, whatever the statement. A completion only moves a job from RUNNING (the
transition table: COMPLETED has no other source) and leaves `limited` as it was, so the
store knows every leave it makes, and now writes them for a whole batch at once
(`completed_leaves`: `complete_jobs`, and a completion by status); the trigger, whose
condition now leaves out a move to COMPLETED, takes off every other leave (a failure, a
cancel, a release, an expired lease).

* PostgreSQL: the trigger was a PL/pgSQL call, an insert into `limit_leaves` and a notify
  per job. A batch of 500 limited completions took 17.2 ms, 3.5 of them in the trigger;
  its statement now writes the 500 leaves in one insert, and takes 14.3 ms (500
  completions where no limit governs: 14.1; docs/benchmarks.md, stop 34). Claimers are
  woken by a statement trigger on `limit_leaves` (`limit_leaves_notify`): once per
  workspace of the leaves each insert writes, whoever wrote them.
* SQLite: the trigger updated `limits.running` once per job and name; the batch now
  updates each limit once, by the number of its jobs it completed.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEAVE = r"""
CREATE OR REPLACE FUNCTION conveyor_leave_limits() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
    VALUES (OLD.workspace_id, OLD.concurrency_key, OLD.type);
    {notify}
    RETURN NULL;
END $$"""
_NOTIFY_ROW = "PERFORM pg_notify('conveyor_jobs', OLD.workspace_id::text);"
_TRIGGER = r"""
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'{also})
    EXECUTE FUNCTION conveyor_leave_limits()"""
_NOT_A_COMPLETION = " AND NEW.status <> 'COMPLETED'"

POSTGRES_UPGRADE = [
    _LEAVE.format(notify=""),
    "DROP TRIGGER jobs_leave_limits ON jobs",
    _TRIGGER.format(also=_NOT_A_COMPLETION),
    r"""
CREATE FUNCTION conveyor_notify_leaves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', w.workspace_id::text)
    FROM (SELECT DISTINCT workspace_id FROM written) w;
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER limit_leaves_notify AFTER INSERT ON limit_leaves
    REFERENCING NEW TABLE AS written FOR EACH STATEMENT
    EXECUTE FUNCTION conveyor_notify_leaves()""",
]
POSTGRES_DOWNGRADE = [
    "DROP TRIGGER limit_leaves_notify ON limit_leaves",
    "DROP FUNCTION conveyor_notify_leaves()",
    "DROP TRIGGER jobs_leave_limits ON jobs",
    _TRIGGER.format(also=""),
    _LEAVE.format(notify=_NOTIFY_ROW),
]


_SQLITE_TRIGGER = """
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    WHEN OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'{also}
BEGIN
    UPDATE limits SET running = running - 1
    WHERE workspace_id = OLD.workspace_id
        AND (name = OLD.concurrency_key OR name = 'type:' || OLD.type);
END"""
SQLITE_UPGRADE = ["DROP TRIGGER jobs_leave_limits", _SQLITE_TRIGGER.format(also=_NOT_A_COMPLETION)]
SQLITE_DOWNGRADE = ["DROP TRIGGER jobs_leave_limits", _SQLITE_TRIGGER.format(also="")]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_UPGRADE if postgres else SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_DOWNGRADE if postgres else SQLITE_DOWNGRADE:
        op.execute(statement)
