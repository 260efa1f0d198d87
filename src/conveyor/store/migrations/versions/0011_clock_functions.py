"""The database's clock, read the same way on both databases.

Statements that read the same on PostgreSQL and SQLite (conveyor/store/sql/shared.sql)
read the clock through three functions. SQLite's connections register them in Python;
these are PostgreSQL's: plain SQL functions, which the planner inlines into the statement
(they cost nothing at run time).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTIONS = (
    "CREATE OR REPLACE FUNCTION conveyor_now() RETURNS timestamptz "
    "LANGUAGE sql STABLE PARALLEL SAFE AS 'SELECT now()'",
    "CREATE OR REPLACE FUNCTION conveyor_after(seconds double precision) "
    "RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE "
    "AS 'SELECT now() + make_interval(secs => seconds)'",
    "CREATE OR REPLACE FUNCTION conveyor_seconds_since(moment timestamptz) "
    "RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE "
    "AS 'SELECT EXTRACT(EPOCH FROM (now() - moment))::double precision'",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in FUNCTIONS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS conveyor_now()")
        op.execute("DROP FUNCTION IF EXISTS conveyor_after(double precision)")
        op.execute("DROP FUNCTION IF EXISTS conveyor_seconds_since(timestamptz)")
