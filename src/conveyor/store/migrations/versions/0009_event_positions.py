"""Events record the transaction that wrote them; workspace streams go in (tx, id) order.

Event ids are handed out when a row is inserted, not when it commits, so on PostgreSQL two
transactions can commit their events out of id order, and a stream resuming after an id
could miss an event committed just after it. Ordered by the writing transaction's id, and
passed on only once every older transaction has ended, a workspace stream's position is
exact (see `conveyor.domain.events.StreamPosition`). Existing rows get tx 1, before any
transaction id (so a writer that was waiting on this ALTER, with a smaller transaction id
than the migration's, still sorts after them; and on PostgreSQL adding a column with a
constant default rewrites nothing). SQLite writes 0 (its single writer commits in id
order).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("events") as batch:
        batch.add_column(
            sa.Column(
                "tx",
                sa.BigInteger(),
                nullable=False,
                server_default=sa.text("1" if postgresql else "0"),
            )
        )
    if postgresql:
        op.execute(
            "ALTER TABLE events ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)"
        )
    op.drop_index("ix_events_workspace", table_name="events")
    op.create_index("ix_events_workspace_position", "events", ["workspace_id", "tx", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_workspace_position", table_name="events")
    op.create_index("ix_events_workspace", "events", ["workspace_id", "id"])
    with op.batch_alter_table("events") as batch:
        batch.drop_column("tx")
