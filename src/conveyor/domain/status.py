"""The job status machine: the one home of every fact about job statuses.

Which moves are legal (`TRANSITIONS`), which only Conveyor itself makes, which statuses a
claim takes and a lease holds, and which event puts a job in which status. The store
derives its SQL guards and partial-index predicates from these, the event hub and the CLI
their readings of events: nobody restates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from conveyor.domain import events


class JobStatus(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES: Final = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED_STATUSES: Final = frozenset(set(JobStatus) - TERMINAL_STATUSES)

TRANSITIONS: Final[Mapping[JobStatus, frozenset[JobStatus]]] = {
    JobStatus.PENDING: frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}

SYSTEM_ONLY_TRANSITIONS: Final = frozenset({(JobStatus.RUNNING, JobStatus.QUEUED)})
"""Moves only Conveyor itself makes (automatic retry, lease expiry, hand-back); no caller
may ask for them."""


def can_transition(source: JobStatus, target: JobStatus, *, by_system: bool = False) -> bool:
    if target not in TRANSITIONS[source]:
        return False
    return by_system or (source, target) not in SYSTEM_ONLY_TRANSITIONS


def sources_for(target: JobStatus, *, by_system: bool = False) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached: the guard of a compare-and-set."""
    return frozenset(
        source for source in JobStatus if can_transition(source, target, by_system=by_system)
    )


CLAIMABLE_STATUS: Final = JobStatus.QUEUED
"""Claims take QUEUED jobs whose run_at has come; PENDING jobs are held back."""

LEASED_STATUS: Final = JobStatus.RUNNING
"""The status of a job held by a worker under a lease (and the one a claim moves it to)."""

RETRIABLE_STATUSES: Final = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""A job that ended in one of these may be run again by a client, as a new job (`retry_of`
pointing back)."""
assert RETRIABLE_STATUSES <= TERMINAL_STATUSES, "only a finished job is run again"

assert CLAIMABLE_STATUS in sources_for(LEASED_STATUS), "a claim must be a legal move"
assert LEASED_STATUS in sources_for(JobStatus.COMPLETED), "a worker must be able to complete"

STATUS_OF_EVENT: Final[Mapping[str, JobStatus]] = {
    events.JOB_QUEUED: JobStatus.QUEUED,
    events.JOB_STARTED: JobStatus.RUNNING,
    events.JOB_COMPLETED: JobStatus.COMPLETED,
    events.JOB_FAILED: JobStatus.FAILED,
    events.JOB_CANCELLED: JobStatus.CANCELLED,
}
"""The status a job is in once an event of this type is written (events of other types
leave the status as it was)."""

TERMINAL_EVENTS: Final[Mapping[str, JobStatus]] = {
    event_type: status for event_type, status in STATUS_OF_EVENT.items() if status.is_terminal
}
"""The events that end a job, and the status each ends it in: a job's stream closes after one."""
