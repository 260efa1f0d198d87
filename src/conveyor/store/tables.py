"""The schema as SQLAlchemy Core metadata: the models migrations are checked against.
Text columns whose length the domain bounds with a named constant take it from there.

Only migrations and that check use these objects; queries are hand-written SQL (see
`jobs.py`) so the hot paths stay one round trip. SQLite keeps timestamps as REAL Unix
seconds (arithmetic and comparison stay numeric), UUIDs as text and JSON as text.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from conveyor.domain.capacity import LIMIT_NAME_MAX_LENGTH
from conveyor.domain.events import EVENT_TYPE_MAX_LENGTH
from conveyor.domain.job_types import JOB_TYPE_MAX_LENGTH
from conveyor.domain.jobs import (
    AGENT_TASK_ID_MAX_LENGTH,
    CLAIMABLE_STATUS,
    CONCURRENCY_KEY_MAX_LENGTH,
    DEFAULT_LEASE_SECONDS,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    LEASED_STATUS,
    JobStatus,
)
from conveyor.domain.schedules import (
    CRON_MAX_LENGTH,
    TIMEZONE_MAX_LENGTH,
    CatchUp,
    Overlap,
    RunOutcome,
    SkipReason,
)
from conveyor.domain.steps import STEP_NAME_MAX_LENGTH, StepPhase, StepStatus, StepType
from conveyor.domain.workspaces import Role
from conveyor.store.queries import is_type_limit, settled_condition, status_condition

metadata = sa.MetaData()


def uuid_type() -> sa.types.TypeEngine[Any]:
    return sa.Uuid(as_uuid=True).with_variant(sa.String(36), "sqlite")


def timestamp_type() -> sa.types.TypeEngine[Any]:
    return sa.DateTime(timezone=True).with_variant(sa.Float(), "sqlite")


class WritingTransaction(sa.sql.expression.FunctionElement[int]):
    """The id of the transaction writing a row: on PostgreSQL its 64-bit transaction id
    (which orders transactions by when they began writing); 0 on SQLite, whose single
    writer commits rows in id order anyway."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(WritingTransaction, "postgresql")
def _writing_transaction_on_postgresql(
    element: WritingTransaction, compiler: SQLCompiler, **kw: Any
) -> str:
    return "(pg_current_xact_id()::text::bigint)"


@compiles(WritingTransaction, "sqlite")
def _writing_transaction_on_sqlite(
    element: WritingTransaction, compiler: SQLCompiler, **kw: Any
) -> str:
    return "0"


def json_type() -> sa.types.TypeEngine[Any]:
    return (
        sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")
    )


# The domain's enums, as the check constraints spell them (migrations spell them out).
JOB_STATUSES = tuple(status.value for status in JobStatus)
STEP_STATUSES = tuple(status.value for status in StepStatus)
STEP_PHASES = tuple(phase.value for phase in StepPhase)
STEP_TYPES = tuple(step_type.value for step_type in StepType)
KEY_ROLES = tuple(role.value for role in Role)
# Partial-index predicates, from the status machine: the same text the queries match.
CLAIMABLE = status_condition([CLAIMABLE_STATUS])
LEASED = status_condition([LEASED_STATUS])


def partial(condition: str | sa.TextClause) -> dict[str, Any]:
    """A partial index's keyword arguments: the same condition on both databases."""
    where = sa.text(condition) if isinstance(condition, str) else condition
    return {"postgresql_where": where, "sqlite_where": where}


def _one_of(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("slug", sa.String(63), nullable=False),
    sa.Column("created_at", timestamp_type(), nullable=False),
    # Fair claims give a workspace turns in proportion to its weight.
    sa.Column("weight", sa.Integer(), nullable=False, server_default=sa.text("1")),
    # What the workspace sets for itself, as a JSON document (retention…); NULL: nothing,
    # every setting is the instance's (see conveyor.domain.settings.WorkspaceSettings).
    sa.Column("settings", sa.Text(), nullable=True),
    # The last version given to any of its limits (migration 0024): each PUT of a limit
    # takes the next, so a limit's versions never repeat, not even across a delete.
    sa.Column("limit_versions", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("slug", name="uq_workspaces_slug"),
    sa.CheckConstraint("weight BETWEEN 1 AND 1000", name="ck_workspaces_weight"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column(
        "workspace_id",
        uuid_type(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_api_keys_workspace"),
        nullable=True,  # an instance key belongs to no workspace
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", timestamp_type(), nullable=False),
    sa.Column("revoked_at", timestamp_type(), nullable=True),
    _one_of("role", KEY_ROLES, "ck_api_keys_role"),
    sa.CheckConstraint(
        "workspace_id IS NOT NULL OR role IN ('worker', 'admin')", name="ck_api_keys_instance_role"
    ),
)
sa.Index("ix_api_keys_workspace", api_keys.c.workspace_id)

# PostgreSQL vacuums the tables that churn (every job is inserted, updated twice and, by
# retention, deleted; its events inserted and deleted) sooner than its defaults would: at
# 2 % of the table dead instead of 20 % (with retention of days, millions of rows), and
# unthrottled. Measured in docs/benchmarks.md ("A soak with retention 0"), reasons in
# docs/architecture.md. Migration 0014 sets them on existing tables.
QUEUE_TABLE_STORAGE = {
    "autovacuum_vacuum_scale_factor": "0.02",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_vacuum_insert_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "0",
}

# PostgreSQL keeps half of each page of `limits` free: every claim under limits updates the
# count of each limit it starts jobs under, and with room the new row version stays on its
# page and touches no index (measured in docs/benchmarks.md, stop 32).
LIMITS_STORAGE = {"fillfactor": "50"}

# No foreign key to workspaces: a job is only inserted for the workspace its caller was
# authenticated in, and workspaces are not deleted; the check cost a sixth of a bulk create.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("workspace_id", uuid_type(), nullable=False),
    sa.Column("type", sa.String(JOB_TYPE_MAX_LENGTH), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.SmallInteger(), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("result", json_type(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("error_detail", sa.Text(), nullable=True),
    sa.Column("progress_percent", sa.SmallInteger(), nullable=False),
    sa.Column("agent_task_id", sa.String(AGENT_TASK_ID_MAX_LENGTH), nullable=True),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("max_attempts", sa.Integer(), nullable=False),
    sa.Column("run_at", timestamp_type(), nullable=False),
    sa.Column("idempotency_key", sa.String(IDEMPOTENCY_KEY_MAX_LENGTH), nullable=True),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("lease_id", uuid_type(), nullable=True),
    sa.Column("lease_expires_at", timestamp_type(), nullable=True),
    sa.Column("retry_of", uuid_type(), nullable=True),
    sa.Column("retry_backoff_seconds", sa.Float(), nullable=False),
    sa.Column("retry_backoff_max_seconds", sa.Float(), nullable=False),
    sa.Column("created_at", timestamp_type(), nullable=False),
    sa.Column("started_at", timestamp_type(), nullable=True),
    sa.Column("completed_at", timestamp_type(), nullable=True),
    sa.Column("updated_at", timestamp_type(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("last_event_seq", sa.Integer(), nullable=False),
    sa.Column("last_step_ordinal", sa.Integer(), nullable=False),
    sa.Column("concurrency_key", sa.String(CONCURRENCY_KEY_MAX_LENGTH), nullable=True),
    sa.Column("timeout_seconds", sa.Float(), nullable=True),
    # Counted in its limits' `running` while it runs: its leaving RUNNING takes it off
    # them and makes room (a completion's own statement, any other leave a trigger:
    # migrations 0018 and 0022; on PostgreSQL each leave also wakes claimers).
    sa.Column("limited", sa.Boolean(), nullable=False, server_default=sa.false()),
    # The length its latest lease was asked for, which a heartbeat naming none renews it
    # for (migration 0023).
    sa.Column(
        "lease_seconds",
        sa.Float(),
        nullable=False,
        server_default=f"{DEFAULT_LEASE_SECONDS:g}",
    ),
    _one_of("status", JOB_STATUSES, "ck_jobs_status"),
    sa.CheckConstraint("priority BETWEEN 1 AND 10", name="ck_jobs_priority"),
    sa.CheckConstraint("progress_percent BETWEEN 0 AND 100", name="ck_jobs_progress"),
    sa.CheckConstraint("attempt >= 1 AND max_attempts >= 1", name="ck_jobs_attempts"),
    sa.CheckConstraint(
        f"status <> '{LEASED_STATUS.value}' "
        "OR (lease_id IS NOT NULL AND lease_expires_at IS NOT NULL)",
        name="ck_jobs_running_has_lease",
    ),
    postgresql_with=QUEUE_TABLE_STORAGE,
)
# The claim: most urgent claimable first within each group (a workspace and concurrency
# key; jobs without one are a group of their own), and the groups with claimable work
# found by skipping through it. Partial, so finished jobs never bloat it.
sa.Index(
    "ix_jobs_claimable",
    jobs.c.workspace_id,
    jobs.c.concurrency_key,
    jobs.c.priority,
    jobs.c.run_at,
    jobs.c.id,
    **partial(CLAIMABLE),
)
# When a waiting claim should look again: the next job to come due. By due time alone: led
# by the workspace it looked, to a planner without statistics (a table filled since its
# last ANALYZE), as good as ix_jobs_claimable for reading a group's due jobs, and it read
# and sorted every due job of the workspace for each claim (docs/benchmarks.md, finding 12).
sa.Index(
    "ix_jobs_due",
    jobs.c.run_at,
    **partial(CLAIMABLE),
)
# The reaper: running jobs by lease deadline.
sa.Index(
    "ix_jobs_lease_expiry",
    jobs.c.lease_expires_at,
    **partial(LEASED),
)
# Listing, newest first, within one workspace, optionally by status, type or agent task.
sa.Index("ix_jobs_workspace_created", jobs.c.workspace_id, jobs.c.created_at, jobs.c.id)
# Queued and running jobs are found through their own partial indexes (above); leaving
# them out of the status and type indexes keeps the claim on ix_jobs_claimable, whatever
# the statistics say after a burst, and saves index entries on every create and claim.
_SETTLED = sa.text(settled_condition())
sa.Index(
    "ix_jobs_workspace_status",
    jobs.c.workspace_id,
    jobs.c.status,
    jobs.c.created_at,
    **partial(_SETTLED),
)
sa.Index(
    "ix_jobs_workspace_type",
    jobs.c.workspace_id,
    jobs.c.type,
    jobs.c.created_at,
    **partial(_SETTLED),
)
sa.Index(
    "ix_jobs_workspace_agent_task",
    jobs.c.workspace_id,
    jobs.c.agent_task_id,
    **partial("agent_task_id IS NOT NULL"),
)
# Finished jobs by final status and when they finished: the pruner's selection (one status
# at a time, oldest first, each status with its own cut-off) and the throughput over time
# (each final status a range). Only finished jobs have completed_at.
sa.Index(
    "ix_jobs_workspace_finished",
    jobs.c.workspace_id,
    jobs.c.status,
    jobs.c.completed_at,
    **partial("completed_at IS NOT NULL"),
)
# Idempotency keys are unique per workspace; the database, not the code, settles a race.
sa.Index(
    "uq_jobs_idempotency_key",
    jobs.c.workspace_id,
    jobs.c.idempotency_key,
    unique=True,
    **partial("idempotency_key IS NOT NULL"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column(
        "job_id",
        uuid_type(),
        sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_steps_job"),
        nullable=False,
    ),
    sa.Column("ordinal", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(STEP_NAME_MAX_LENGTH), nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", timestamp_type(), nullable=True),
    sa.Column("completed_at", timestamp_type(), nullable=True),
    sa.Column("duration_ms", sa.BigInteger(), nullable=True),
    sa.Column("tokens_input", sa.BigInteger(), nullable=True),
    sa.Column("tokens_output", sa.BigInteger(), nullable=True),
    sa.Column("output", sa.Text(), nullable=True),
    sa.UniqueConstraint("job_id", "ordinal", name="uq_steps_job_ordinal"),
    _one_of("phase", STEP_PHASES, "ck_steps_phase"),
    _one_of("type", STEP_TYPES, "ck_steps_type"),
    _one_of("status", STEP_STATUSES, "ck_steps_status"),
    postgresql_with=QUEUE_TABLE_STORAGE,
)

# No foreign key to jobs: an event is only inserted by the statement that just wrote its
# job's row, and jobs are not deleted; the check cost a quarter of a job's creation.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("job_id", uuid_type(), nullable=False),
    sa.Column("workspace_id", uuid_type(), nullable=False),
    sa.Column(
        "job_type", sa.String(JOB_TYPE_MAX_LENGTH), nullable=False, server_default=sa.text("''")
    ),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("step_id", uuid_type(), nullable=True),
    sa.Column("type", sa.String(EVENT_TYPE_MAX_LENGTH), nullable=False),
    sa.Column("actor", sa.String(300), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("created_at", timestamp_type(), nullable=False),
    # Workspace streams go in (tx, id) order: see conveyor.domain.events.StreamPosition.
    sa.Column("tx", sa.BigInteger(), nullable=False, server_default=WritingTransaction()),
    sa.UniqueConstraint("job_id", "seq", name="uq_events_job_seq"),
    # Event ids are stream positions: never reused, even once the newest events are pruned
    # (SQLite would hand out max(id) + 1 again without AUTOINCREMENT; PostgreSQL's
    # sequence never goes back).
    sqlite_autoincrement=True,
    postgresql_with=QUEUE_TABLE_STORAGE,
)
sa.Index("ix_events_workspace_position", events.c.workspace_id, events.c.tx, events.c.id)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column(
        "key_id",
        uuid_type(),
        sa.ForeignKey("api_keys.id", ondelete="CASCADE", name="fk_sessions_key"),
        nullable=False,
    ),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", timestamp_type(), nullable=False),
    sa.Column("expires_at", timestamp_type(), nullable=False),
    sa.UniqueConstraint("token_hash", name="uq_sessions_token_hash"),
)
sa.Index("ix_sessions_key", sessions.c.key_id)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column(
        "workspace_id",
        uuid_type(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_workers_workspace"),
        primary_key=True,
    ),
    sa.Column("worker_id", sa.String(200), primary_key=True),
    sa.Column("first_seen_at", timestamp_type(), nullable=False),
    sa.Column("last_seen_at", timestamp_type(), nullable=False),
    # The job types it claims (a JSON array), or NULL when it claims any type.
    sa.Column("types", sa.Text(), nullable=True),
    # Seen less recently than this, it counts as stopped (its lease or claim wait, and some).
    sa.Column("stale_after_seconds", sa.Float(), nullable=False, server_default=sa.text("90")),
)

# Limits on what a workspace runs at once, how often it starts, or whether it starts at
# all: named by a concurrency key, or `type:<type>` for every job of a type.
limits = sa.Table(
    "limits",
    metadata,
    sa.Column(
        "workspace_id",
        uuid_type(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_limits_workspace"),
        primary_key=True,
    ),
    sa.Column("name", sa.String(LIMIT_NAME_MAX_LENGTH), primary_key=True),
    sa.Column("max_running", sa.Integer(), nullable=True),
    sa.Column("rate_count", sa.Integer(), nullable=True),
    sa.Column("rate_per_seconds", sa.Float(), nullable=True),
    sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("created_at", timestamp_type(), nullable=False),
    sa.Column("updated_at", timestamp_type(), nullable=False),
    # The jobs counted in it that run now, less the rows of its name in limit_leaves.
    sa.Column("running", sa.Integer(), nullable=False, server_default=sa.text("0")),
    # Changes with its settings (each PUT), not its counts (see workspaces.limit_versions).
    sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    sa.CheckConstraint(
        "(rate_count IS NULL) = (rate_per_seconds IS NULL)", name="ck_limits_rate_whole"
    ),
    postgresql_with=LIMITS_STORAGE,
)

# A workspace's type limits (`type:<type>`), which every claim under limits reads.
_TYPE_LIMIT = sa.text(is_type_limit("name"))
sa.Index(
    "ix_limits_types",
    limits.c.workspace_id,
    limits.c.name,
    **partial(_TYPE_LIMIT),
)

# On PostgreSQL, a row per job counted in limits when it left RUNNING (its key and type),
# until a claim of its workspace folds them into `limits.running` (migration 0018 says why;
# empty on SQLite).
limit_leaves = sa.Table(
    "limit_leaves",
    metadata,
    sa.Column("workspace_id", uuid_type(), nullable=False),
    sa.Column("concurrency_key", sa.String(CONCURRENCY_KEY_MAX_LENGTH), nullable=True),
    sa.Column("type", sa.String(JOB_TYPE_MAX_LENGTH), nullable=False),
)
sa.Index("ix_limit_leaves", limit_leaves.c.workspace_id)

# When jobs started under a limit with a rate: the window each claim counts.
limit_starts = sa.Table(
    "limit_starts",
    metadata,
    sa.Column("workspace_id", uuid_type(), nullable=False),
    sa.Column("name", sa.String(LIMIT_NAME_MAX_LENGTH), nullable=False),
    sa.Column("started_at", timestamp_type(), nullable=False),
)
sa.Index(
    "ix_limit_starts_window",
    limit_starts.c.workspace_id,
    limit_starts.c.name,
    limit_starts.c.started_at,
)

# Schedules: cron rules that create jobs (conveyor.domain.schedules). `next_run_at` is NULL
# while paused; `firing_tick` is a tick decided to fire whose job is not yet known to exist.
SCHEDULE_OVERLAPS = tuple(overlap.value for overlap in Overlap)
SCHEDULE_CATCH_UPS = tuple(catch_up.value for catch_up in CatchUp)
SCHEDULE_SKIP_REASONS = tuple(reason.value for reason in SkipReason)
SCHEDULE_RUN_OUTCOMES = tuple(outcome.value for outcome in RunOutcome)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", uuid_type(), primary_key=True),
    sa.Column(
        "workspace_id",
        uuid_type(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_schedules_workspace"),
        nullable=False,
    ),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("cron", sa.String(CRON_MAX_LENGTH), nullable=False),
    sa.Column("timezone", sa.String(TIMEZONE_MAX_LENGTH), nullable=False),
    sa.Column("job_type", sa.String(JOB_TYPE_MAX_LENGTH), nullable=False),
    sa.Column("job_payload", json_type(), nullable=False),
    sa.Column("job_priority", sa.SmallInteger(), nullable=False),
    sa.Column("job_max_attempts", sa.Integer(), nullable=False),
    sa.Column("job_timeout_seconds", sa.Float(), nullable=True),
    sa.Column("job_concurrency_key", sa.String(CONCURRENCY_KEY_MAX_LENGTH), nullable=True),
    sa.Column("overlap", sa.String(8), nullable=False),
    sa.Column("catch_up", sa.String(8), nullable=False),
    sa.Column("paused", sa.Boolean(), nullable=False),
    sa.Column("next_run_at", timestamp_type(), nullable=True),
    sa.Column("last_run_at", timestamp_type(), nullable=True),
    sa.Column("last_job_id", uuid_type(), nullable=True),
    sa.Column("last_skipped_at", timestamp_type(), nullable=True),
    sa.Column("last_skip_reason", sa.String(16), nullable=True),
    sa.Column("firing_tick", timestamp_type(), nullable=True),
    sa.Column("created_at", timestamp_type(), nullable=False),
    sa.Column("updated_at", timestamp_type(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.UniqueConstraint("workspace_id", "name", name="uq_schedules_workspace_name"),
    _one_of("overlap", SCHEDULE_OVERLAPS, "ck_schedules_overlap"),
    _one_of("catch_up", SCHEDULE_CATCH_UPS, "ck_schedules_catch_up"),
    _one_of("last_skip_reason", SCHEDULE_SKIP_REASONS, "ck_schedules_last_skip_reason"),
    sa.CheckConstraint("job_priority BETWEEN 1 AND 10", name="ck_schedules_job_priority"),
)
# The scheduler's question: which schedules are due (paused ones have no next run).
sa.Index(
    "ix_schedules_next_run",
    schedules.c.next_run_at,
    **partial("next_run_at IS NOT NULL"),
)
# Firings left unfinished (rare, and looked for by every scheduler pass).
sa.Index(
    "ix_schedules_firing",
    schedules.c.firing_tick,
    **partial("firing_tick IS NOT NULL"),
)

# A schedule's history: each tick fired or skipped, each trigger, with the job it made.
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column(
        "schedule_id",
        uuid_type(),
        sa.ForeignKey("schedules.id", ondelete="CASCADE", name="fk_schedule_runs_schedule"),
        nullable=False,
    ),
    sa.Column("workspace_id", uuid_type(), nullable=False),
    sa.Column("tick", timestamp_type(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("job_id", uuid_type(), nullable=True),
    sa.Column("created_at", timestamp_type(), nullable=False),
    _one_of("outcome", SCHEDULE_RUN_OUTCOMES, "ck_schedule_runs_outcome"),
)
sa.Index("ix_schedule_runs_schedule", schedule_runs.c.schedule_id, schedule_runs.c.id)
# The pruner: a workspace's history, oldest first.
sa.Index("ix_schedule_runs_created", schedule_runs.c.workspace_id, schedule_runs.c.created_at)
# One entry per tick, whichever server records it (triggers have no tick).
sa.Index(
    "uq_schedule_runs_tick",
    schedule_runs.c.schedule_id,
    schedule_runs.c.tick,
    unique=True,
    **partial("tick IS NOT NULL"),
)
# One entry per job a trigger made, however often its caller retries (migration 0019).
sa.Index(
    "uq_schedule_runs_trigger",
    schedule_runs.c.schedule_id,
    schedule_runs.c.job_id,
    unique=True,
    **partial("tick IS NULL"),
)


# What the pruner has deleted of each workspace's events: the furthest stream position and
# the highest id among them, so that a workspace stream resumed behind them is told to
# start afresh instead of silently skipping what it never sent (conveyor.domain.lifetime).
workspace_pruning = sa.Table(
    "workspace_pruning",
    metadata,
    sa.Column(
        "workspace_id",
        uuid_type(),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE", name="fk_workspace_pruning_workspace"),
        primary_key=True,
    ),
    sa.Column("event_tx", sa.BigInteger(), nullable=False),
    sa.Column("event_id", sa.BigInteger(), nullable=False),
    sa.Column("highest_event_id", sa.BigInteger(), nullable=False),
    sa.Column("jobs_pruned", sa.BigInteger(), nullable=False),
    sa.Column("pruned_at", timestamp_type(), nullable=False),
)
