"""PostgreSQL leaves half of each page of `limits` free.

Every claim under limits updates the count of each limit its jobs start under (a claim of
500 jobs over 1,000 keys: ~500 rows), and every fold updates them again. A row updated in
a full page moves to another page, and its primary key gains an entry for the new place:
the key index bloats, and the limits read (a key probe per group offered) slows with it.
With room on the page, the update stays there (a heap-only tuple) and touches no index.
Measured in docs/benchmarks.md (stop 32). Pages already full stay so: their rows move to
pages with room as they are updated (or all at once with `VACUUM FULL limits`).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE limits SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE limits RESET (fillfactor)")
