"""Faster queue: the status and type indexes leave out QUEUED and RUNNING jobs, and events
are announced with one aggregate per statement.

* A claim must walk `ix_jobs_claimable` in priority order and stop after `limit` rows.
  With statistics that lag behind a burst of new jobs, the planner preferred reading
  every queued row through `ix_jobs_workspace_status` (or `…_type`) and sorting them.
  Queued and running jobs have partial indexes of their own, so those two no longer list
  them: the claim has one way left, and creating or claiming a job writes two index
  entries fewer.
* The event announcement built its message in a loop of string concatenations (about
  20 µs per event); it now aggregates once, in chunks that fit NOTIFY's 8,000 bytes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTLED = sa.text("status NOT IN ('QUEUED', 'RUNNING')")
NARROWED = (("ix_jobs_workspace_status", "status"), ("ix_jobs_workspace_type", "type"))

NOTIFY_EVENTS = r"""
CREATE OR REPLACE FUNCTION conveyor_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    chunk record;
BEGIN
    -- At most 120 jobs a message: 120 x (36 + 2 x 11 + 2) bytes stays under 8,000.
    FOR chunk IN
        SELECT workspace_id,
               string_agg(job_id::text || ':' || first_seq || ':' || last_seq, ' ') AS jobs
        FROM (
            SELECT workspace_id, job_id, min(seq) AS first_seq, max(seq) AS last_seq,
                   (row_number() OVER (PARTITION BY workspace_id ORDER BY job_id) - 1) / 120
                       AS part
            FROM new_events GROUP BY workspace_id, job_id
        ) grouped
        GROUP BY workspace_id, part
    LOOP
        PERFORM pg_notify('conveyor_events', chunk.workspace_id::text || ' ' || chunk.jobs);
    END LOOP;
    RETURN NULL;
END $$
"""

NOTIFY_EVENTS_BEFORE = r"""
CREATE OR REPLACE FUNCTION conveyor_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
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
END $$
"""


def upgrade() -> None:
    for name, column in (
        ("ix_jobs_workspace_status", "status"),
        ("ix_jobs_workspace_type", "type"),
    ):
        op.drop_index(name, table_name="jobs")
        op.create_index(
            name,
            "jobs",
            ["workspace_id", column, "created_at"],
            postgresql_where=SETTLED,
            sqlite_where=SETTLED,
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_EVENTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_EVENTS_BEFORE)
    for name, column in (
        ("ix_jobs_workspace_status", "status"),
        ("ix_jobs_workspace_type", "type"),
    ):
        op.drop_index(name, table_name="jobs")
        op.create_index(name, "jobs", ["workspace_id", column, "created_at"])
