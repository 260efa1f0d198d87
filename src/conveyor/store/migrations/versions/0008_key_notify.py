"""Announce changes to API keys (revocations above all) with NOTIFY, so every server
process can drop its cached authentication at once — whoever made the change, the API or
`conveyor key revoke` on the database. No-op on SQLite, which caches nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = [
    r"""
CREATE FUNCTION conveyor_notify_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('conveyor_keys', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END $$""",
    r"""
CREATE TRIGGER api_keys_notify AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION conveyor_notify_key_change()""",
]
DOWNGRADE = [
    "DROP TRIGGER IF EXISTS api_keys_notify ON api_keys",
    "DROP FUNCTION IF EXISTS conveyor_notify_key_change()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
