"""Events: the append-only, per-job, gap-free log every change writes in its own transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple
from uuid import UUID

from conveyor.domain.errors import InvalidInput

JsonValue = Any
"""A value that serialises to JSON (dict, list, str, int, float, bool or None)."""

JOB_CREATED: Final = "job.created"
JOB_QUEUED: Final = "job.queued"
JOB_STARTED: Final = "job.started"
JOB_PROGRESS: Final = "job.progress"
JOB_COMPLETED: Final = "job.completed"
JOB_FAILED: Final = "job.failed"
JOB_CANCELLED: Final = "job.cancelled"
JOB_RETRYING: Final = "job.retrying"
JOB_LEASE_EXPIRED: Final = "job.lease_expired"
JOB_RELEASED: Final = "job.released"
JOB_TIMED_OUT: Final = "job.timed_out"
STEP_STARTED: Final = "step.started"
STEP_PROGRESS: Final = "step.progress"
STEP_OUTPUT: Final = "step.output"
STEP_COMPLETED: Final = "step.completed"
STEP_FAILED: Final = "step.failed"
STEP_SKIPPED: Final = "step.skipped"

SYSTEM_EVENT_TYPES: Final = frozenset(
    {
        JOB_CREATED,
        JOB_QUEUED,
        JOB_STARTED,
        JOB_PROGRESS,
        JOB_COMPLETED,
        JOB_FAILED,
        JOB_CANCELLED,
        JOB_RETRYING,
        JOB_LEASE_EXPIRED,
        JOB_RELEASED,
        JOB_TIMED_OUT,
        STEP_STARTED,
        STEP_PROGRESS,
        STEP_OUTPUT,
        STEP_COMPLETED,
        STEP_FAILED,
        STEP_SKIPPED,
    }
)

# Workers may append their own types ("ai.tool_called", "gate.passed"), but never one that
# the state machine writes: a forged "job.completed" would lie to everyone streaming the job.
EVENT_TYPE_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+\Z")
EVENT_TYPE_MAX_LENGTH: Final = 100

SYSTEM_ACTOR: Final = "system"

# The largest numbers an event can carry (`events.seq` is a 32-bit integer on PostgreSQL,
# event ids are 64-bit on both databases), and so the largest resume point a caller may
# name (`after_seq`, `after_id`, `Last-Event-ID`): a larger one cannot even be sent to the
# database in a query.
LARGEST_SEQ: Final = 2**31 - 1
LARGEST_EVENT_ID: Final = 2**63 - 1


def worker_actor(worker_id: str, key_id: UUID | str | None = None) -> str:
    """A worker, and the key it authenticated with when it came over HTTP."""
    return f"worker:{worker_id}" if key_id is None else f"worker:{worker_id}/key:{key_id}"


def key_actor(key_id: UUID | str) -> str:
    return f"key:{key_id}"


def validate_custom_event_type(event_type: str) -> None:
    if len(event_type) > EVENT_TYPE_MAX_LENGTH or not EVENT_TYPE_PATTERN.match(event_type):
        raise InvalidInput(
            "type",
            "must look like 'namespace.name' ([a-z0-9_], dot-separated, at most "
            f"{EVENT_TYPE_MAX_LENGTH} characters)",
        )
    if event_type in SYSTEM_EVENT_TYPES or event_type.startswith(("job.", "stream.")):
        raise InvalidInput("type", f"{event_type!r} is reserved for events Conveyor writes")


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a decision asks the store to append; the store assigns seq and timestamp."""

    type: str
    actor: str
    payload: JsonValue = field(default_factory=dict)
    step_id: UUID | None = None


class StreamPosition(NamedTuple):
    """Where a workspace stream stands: every event at or before this position has been
    considered. Events of a workspace are ordered by (tx, id), where `tx` orders the
    transactions that wrote them by when they began writing; a stream passes an event only
    once every older transaction has ended, so no event can later appear behind its
    position. `(tx, 0)` stands before every event of transaction `tx`."""

    tx: int
    id: int


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    job_id: UUID
    workspace_id: UUID
    job_type: str
    seq: int
    step_id: UUID | None
    type: str
    actor: str
    payload: JsonValue
    timestamp: datetime
    tx: int = 0
    """The writing transaction's id on PostgreSQL; 0 on SQLite, whose single writer
    commits events in id order."""

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(self.tx, self.id)


@dataclass(frozen=True, slots=True)
class WorkspaceEventsPage:
    """A workspace's events after a position, in position order."""

    events: list[Event]
    reached: StreamPosition
    """Where a stream that has passed on these events stands: at the last of them, or
    further when the database vouches that no event can ever appear before that point."""
    full: bool
    """The page hit its limit: there may be more right away."""
    held: bool
    """Events were committed beyond `reached` that cannot be passed on yet (an older
    transaction is still running): look again shortly."""
