"""A completion takes its limited jobs off their limits itself.

Migration 0018's trigger (`jobs_leave_limits`) took each limited job off its limits as it
left RUNNING, whatever the statement. A completion only moves a job from RUNNING (the
transition table: COMPLETED has no other source) and leaves `limited` as it was, so the
store knows every leave it makes, and now writes them for a whole batch at once
(`completed_leaves`: in `complete_jobs`, and in a completion by status); the trigger, whose
condition now leaves out a move to COMPLETED, takes off every other leave (a failure, a
cancel, a release, an expired lease), as before.

* PostgreSQL: the trigger was a PL/pgSQL call, an insert into `limit_leaves` and a notify
  per job. A batch of 500 limited completions took 17.2 ms, 3.5 of them in the trigger;
  its statement now writes the 500 leaves in one insert, with the notify that wakes their
  workspace's claimers, and takes 13.8 to 14.3 ms (500 completions where no limit governs:
  14.1; docs/benchmarks.md, stop 34).
* SQLite: the trigger updated `limits.running` once per job and name; the batch now
  updates each limit once, by the number of its jobs it completed.

A server of an earlier build still completing jobs after this migration would take none of
them off their limits: stop them all before migrating (CHANGELOG).

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

_POSTGRES_TRIGGER = """
CREATE TRIGGER jobs_leave_limits AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.limited AND OLD.status = 'RUNNING' AND NEW.status <> 'RUNNING'{also})
    EXECUTE FUNCTION conveyor_leave_limits()"""
_NOT_A_COMPLETION = " AND NEW.status <> 'COMPLETED'"
POSTGRES_UPGRADE = [
    "DROP TRIGGER jobs_leave_limits ON jobs",
    _POSTGRES_TRIGGER.format(also=_NOT_A_COMPLETION),
]
POSTGRES_DOWNGRADE = ["DROP TRIGGER jobs_leave_limits ON jobs", _POSTGRES_TRIGGER.format(also="")]

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
