"""A decision's change as the parts of its guarded statement.

`apply_change` (shared.sql) is `UPDATE jobs SET {assignments}, … WHERE id = … AND
{guards}`: the parts come from here, for both databases. The status guard is the
transition table's: whatever statuses a change names, only those `sources_for` its
target allows are ever written into the guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from conveyor.domain.jobs import JobChange, JobStatus, sources_for
from conveyor.domain.steps import StepChange
from conveyor.store.connection import Json
from conveyor.store.queries import Queries, status_condition

# Column names are written into statements, so only these are accepted.
CHANGEABLE_JOB_COLUMNS: Final = frozenset(
    {
        "result",
        "error",
        "error_detail",
        "progress_percent",
        "attempt",
        "worker_id",
        "lease_id",
        "lease_expires_at",
        "lease_seconds",
        "run_at",
        "started_at",
        "completed_at",
    }
)
CHANGEABLE_STEP_COLUMNS: Final = frozenset(
    {
        "status",
        "output",
        "tokens_input",
        "tokens_output",
        "duration_ms",
        "started_at",
        "completed_at",
    }
)
JSON_COLUMNS: Final = frozenset({"payload", "result"})


@dataclass(frozen=True, slots=True)
class GuardedChange:
    """The shared `apply_change` statement for one change, and its parameters."""

    sql: str
    params: dict[str, Any]


def allowed_statuses(change: JobChange) -> frozenset[JobStatus]:
    """The statuses the change may be stored from: what it names, cut down to what the
    transition table allows for its target. The table has the last word."""
    allowed = change.allowed_sources
    if change.target is not None:
        allowed = allowed & sources_for(change.target, by_system=True)
    if not allowed:
        raise ValueError(f"no status may move to {change.target}: {change.allowed_sources}")
    return allowed


def guarded_change(queries: Queries, workspace_id: UUID, change: JobChange) -> GuardedChange:
    unknown = (set(change.values) | change.stamp | set(change.delay)) - CHANGEABLE_JOB_COLUMNS
    if unknown:
        raise ValueError(f"a JobChange may not set {sorted(unknown)}")
    params: dict[str, Any] = {
        "job_id": change.job_id,
        "ws": workspace_id,
        "event_count": len(change.events),
    }
    guards = [status_condition(allowed_statuses(change))]
    if change.expected_version is not None:
        guards.append("version = :expected_version")
        params["expected_version"] = change.expected_version
    if change.lease_id is not None:
        guards.append("lease_id = :guard_lease_id")
        params["guard_lease_id"] = change.lease_id
    if change.progress_at_most is not None:
        guards.append("progress_percent <= :progress_at_most")
        params["progress_at_most"] = change.progress_at_most
    if change.only_if_lease_expired:
        guards.append("lease_expires_at < conveyor_now()")
    if change.unless_limits:
        names = queries.in_list("l.name", "unless_limits")
        guards.append(queries["no_limits_named"].compose(names=names))
        params["unless_limits"] = list(change.unless_limits)
    assignments = []
    if change.target is not None:
        assignments.append("status = :status")
        params["status"] = change.target.value
    if change.target is JobStatus.RUNNING:
        # A start by name, refused where a limit governs the job (`unless_limits`): it
        # counts in none (migration 0020; a claim's start decides for itself).
        if not change.unless_limits:
            raise ValueError("a start by name must be refused where a limit governs the job")
        assignments.append("limited = false")
    for column, value in sorted(change.values.items()):
        assignments.append(f"{column} = :set_{column}")
        params[f"set_{column}"] = Json(value) if column in JSON_COLUMNS else value
    assignments += [f"{column} = conveyor_now()" for column in sorted(change.stamp)]
    for column, seconds in sorted(change.delay.items()):
        assignments.append(f"{column} = conveyor_after(:delay_{column})")
        params[f"delay_{column}"] = seconds
    if not assignments:
        raise ValueError("a JobChange must set something")
    sql = queries["apply_change"].compose(
        assignments=", ".join(assignments), guards=" AND ".join(guards)
    )
    return GuardedChange(sql, params)


def report_guard(
    statuses: frozenset[JobStatus], lease_id: UUID | None
) -> tuple[str, dict[str, Any]]:
    """The guard of a worker's report: a status that takes reports and, with a lease, that
    lease (the rules `ensure_lease` explains when the guard misses)."""
    if lease_id is None:
        return status_condition(statuses), {}
    return f"{status_condition(statuses)} AND lease_id = :lease_id", {"lease_id": lease_id}


def step_assignments(change: StepChange) -> tuple[str, dict[str, Any]]:
    """`{assignments}` of `update_step` for a step change ('' when it sets nothing)."""
    unknown = (set(change.values) | change.stamp) - CHANGEABLE_STEP_COLUMNS
    if unknown:
        raise ValueError(f"a StepChange may not set {sorted(unknown)}")
    assignments: list[str] = []
    values: dict[str, Any] = {}
    for column, value in sorted(change.values.items()):
        assignments.append(f"{column} = :set_{column}")
        values[f"set_{column}"] = value
    assignments += [f"{column} = conveyor_now()" for column in sorted(change.stamp)]
    if change.measure_duration:
        assignments.append(
            "duration_ms = CAST(COALESCE(conveyor_seconds_since(started_at), 0) * 1000 AS BIGINT)"
        )
    return ", ".join(assignments), values


def new_step_times(change: StepChange) -> dict[str, str]:
    """`{started_at}`, `{completed_at}` and `{duration_ms}` of `insert_step`."""
    return {
        "started_at": "conveyor_now()" if "started_at" in change.stamp else "NULL",
        "completed_at": "conveyor_now()" if "completed_at" in change.stamp else "NULL",
        "duration_ms": "0" if change.measure_duration else "NULL",
    }
