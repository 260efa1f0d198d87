"""How long finished jobs are kept, and what a workspace stream is told when it resumes
behind events that were deleted since.

Retention is per final status, in days: `None` keeps forever, `0` lets the pruner delete a
job as soon as it sees it finished. An instance has defaults (from its settings); a
workspace may set its own values, each on its own: a value the workspace does not set is
the instance's, whatever the instance's becomes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from conveyor.domain.errors import InvalidInput, StreamPositionGone
from conveyor.domain.events import StreamPosition
from conveyor.domain.status import TERMINAL_STATUSES, JobStatus

SECONDS_PER_DAY: Final = 86_400
MAX_RETENTION_DAYS: Final = 36_500
"""A hundred years: longer than anyone means, short enough that the cut-off is a date."""

RETENTION_FIELDS: Final[Mapping[JobStatus, str]] = {
    JobStatus.COMPLETED: "completed_days",
    JobStatus.FAILED: "failed_days",
    JobStatus.CANCELLED: "cancelled_days",
}
"""The retention setting of each final status (and only those: unfinished jobs are never
deleted)."""
assert set(RETENTION_FIELDS) == TERMINAL_STATUSES, "every final status has a retention"

INHERIT: Final = "default"
"""What a settings change sends to drop a workspace's own value and take the instance's
again."""

RETENTION_SETTINGS: Final = "retention"


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each kind of finished job is kept; None: forever."""

    completed_days: int | None
    failed_days: int | None
    cancelled_days: int | None

    def days_for(self, status: JobStatus) -> int | None:
        days: int | None = getattr(self, RETENTION_FIELDS[status])
        return days

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in RETENTION_FIELDS.values()}

    def validate(self, where: str) -> None:
        for name, days in self.as_dict().items():
            validate_days(days, f"{where}{name}")


DEFAULT_RETENTION: Final = Retention(completed_days=14, failed_days=30, cancelled_days=14)
"""The instance's defaults unless its settings say otherwise."""


def validate_days(days: object, field_name: str) -> None:
    if days is None:
        return
    if isinstance(days, bool) or not isinstance(days, int):
        raise InvalidInput(field_name, "must be a whole number of days, or null (keep forever)")
    if not 0 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(field_name, f"must be between 0 and {MAX_RETENTION_DAYS} days")


@dataclass(frozen=True, slots=True)
class PruneRule:
    """Delete `status` jobs of a workspace that finished more than `age_seconds` ago."""

    status: JobStatus
    age_seconds: float


def prune_rules(retention: Retention) -> list[PruneRule]:
    """What the pruner deletes under a retention: one rule per final status not kept
    forever, in the order of the status machine's final statuses."""
    rules = []
    for status, name in RETENTION_FIELDS.items():
        days: int | None = getattr(retention, name)
        if days is not None:
            rules.append(PruneRule(status, float(days * SECONDS_PER_DAY)))
    return rules


def history_age_seconds(retention: Retention) -> float | None:
    """How long a schedule's history (what each tick did, with its job) is kept: as long
    as the jobs it names may be, the longest of the retentions; None (forever) when any
    final status is kept forever."""
    days = [getattr(retention, name) for name in RETENTION_FIELDS.values()]
    if any(value is None for value in days):
        return None
    return float(max(days) * SECONDS_PER_DAY)


@dataclass(frozen=True, slots=True)
class PrunedEvents:
    """What the pruner has deleted of a workspace's events: the furthest stream position
    among them and the highest event id."""

    position: StreamPosition
    highest_id: int


def resume_position(
    event_id: int, found: StreamPosition | None, pruned: PrunedEvents | None
) -> StreamPosition | None:
    """Where a workspace stream resumed after event `event_id` starts; None when the
    workspace never had such an event. `found` is that event's position, if it still
    exists; `pruned`, what the pruner deleted of the workspace's events so far.

    A client at position P has seen every event up to P. If any deleted event lies beyond
    P, the client missed it and can never get it: resuming would be a silent gap, so it is
    refused (`StreamPositionGone`) and the client starts afresh. The event it names may be
    deleted itself: if it is the furthest one deleted, nothing deleted lies beyond it and
    the stream resumes exactly there; any other deleted event has the furthest beyond it,
    so it is refused. An id that no longer exists but is not above the highest deleted id
    was deleted (or belongs to another workspace, which the caller cannot tell apart from
    it). Event 0 starts at the oldest event kept: not a resume, so nothing is missed."""
    if event_id == 0:
        return StreamPosition(0, 0)
    if found is None:
        if pruned is not None and event_id == pruned.position.id:
            return pruned.position
        if pruned is not None and event_id <= pruned.highest_id:
            raise StreamPositionGone(event_id)
        return None
    if pruned is not None and pruned.position > found:
        raise StreamPositionGone(event_id)
    return found
