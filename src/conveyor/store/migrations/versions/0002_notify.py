"""PostgreSQL NOTIFY triggers: wake claimers when jobs become QUEUED, and announce new events
(compactly, by job and seq range) to the processes streaming them. No-op on SQLite, where
the one process hears its own commits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One statement per string: the asyncpg driver prepares each, and a prepared statement
# holds exactly one command.
UPGRADE = [
    r"""
CREATE FUNCTION conveyor_notify_inserted_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    workspace uuid;
BEGIN
    FOR workspace IN SELECT DISTINCT workspace_id FROM new_jobs WHERE status = 'QUEUED' LOOP
        PERFORM pg_notify('conveyor_jobs', workspace::text);
    END LOOP;
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER jobs_notify_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_notify_inserted_jobs()""",
    r"""
CREATE FUNCTION conveyor_notify_requeued_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_jobs', NEW.workspace_id::text);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER jobs_notify_requeued AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status = 'QUEUED' AND OLD.status IS DISTINCT FROM 'QUEUED')
    EXECUTE FUNCTION conveyor_notify_requeued_job()""",
    # One notification per workspace per statement (split before the 8000-byte payload
    # limit): "<workspace> <job>:<first seq>:<last seq> …". Listeners fetch the rows they
    # need, once per process, however many streams they serve.
    r"""
CREATE FUNCTION conveyor_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    item record;
    workspace uuid;
    message text := '';
BEGIN
    FOR item IN
        SELECT workspace_id, job_id, min(seq) AS first_seq, max(seq) AS last_seq
        FROM new_events GROUP BY workspace_id, job_id ORDER BY workspace_id
    LOOP
        IF message <> '' AND (item.workspace_id <> workspace OR length(message) > 7000) THEN
            PERFORM pg_notify('conveyor_events', message);
            message := '';
        END IF;
        IF message = '' THEN
            workspace := item.workspace_id;
            message := workspace::text;
        END IF;
        message := message || ' ' || item.job_id::text || ':' || item.first_seq || ':'
            || item.last_seq;
    END LOOP;
    IF message <> '' THEN
        PERFORM pg_notify('conveyor_events', message);
    END IF;
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER events_notify AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION conveyor_notify_events()""",
]

DOWNGRADE = [
    "DROP TRIGGER IF EXISTS events_notify ON events",
    "DROP FUNCTION IF EXISTS conveyor_notify_events()",
    "DROP TRIGGER IF EXISTS jobs_notify_requeued ON jobs",
    "DROP FUNCTION IF EXISTS conveyor_notify_requeued_job()",
    "DROP TRIGGER IF EXISTS jobs_notify_inserted ON jobs",
    "DROP FUNCTION IF EXISTS conveyor_notify_inserted_jobs()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
