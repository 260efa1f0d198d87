"""Lists of jobs: what a list (or a bulk action) is narrowed to, the opaque cursor deep lists
page with, and the bounds on what one request counts or changes.

A list is ordered newest first: by `created_at`, then by id (UUIDv7, so in creation order
among jobs created at the same instant). A cursor names the last job of a page; the next
page holds the jobs after it in that order, so jobs created meanwhile (which sort first)
never shift it, unlike an offset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from uuid import UUID

from conveyor.domain.cursors import decode_cursor, encode_cursor, invalid_cursor
from conveyor.domain.errors import InvalidInput
from conveyor.domain.limits import validate_instant
from conveyor.domain.status import RETRIABLE_STATUSES, JobStatus, sources_for

EXACT_TOTAL_LIMIT: Final = 10_000
"""A list's total is counted exactly up to this many jobs; beyond, it is an estimate
(PostgreSQL's planner's) or the bound itself (SQLite), and says so."""
BULK_LIMIT: Final = 1_000
"""The most jobs one bulk request changes; the caller repeats for the rest."""
ERROR_CONTAINS_MAX_LENGTH: Final = 200
_CURSOR_VERSION: Final = "1"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What a job list is narrowed to (within one workspace, always)."""

    statuses: frozenset[JobStatus] = frozenset()
    type: str | None = None
    type_prefix: str | None = None
    """Types that begin with this (`demo` finds `demo.fail`)."""
    agent_task_id: str | None = None
    id_contains: str | None = None
    """Part of the id, dashes or not."""
    concurrency_key: str | None = None
    worker_id: str | None = None
    """The worker that ran (or runs) the job's latest attempt."""
    error_contains: str | None = None
    """Part of the job's error, in any case."""
    created_after: datetime | None = None
    """Created strictly after this moment."""
    created_before: datetime | None = None
    """Created strictly before this moment."""

    @property
    def is_empty(self) -> bool:
        return self == JobFilter()

    def validate(self) -> None:
        for name in ("created_after", "created_before"):
            moment: datetime | None = getattr(self, name)
            if moment is not None:
                validate_instant(moment, name)
        if self.error_contains is not None and not (
            0 < len(self.error_contains) <= ERROR_CONTAINS_MAX_LENGTH
        ):
            raise InvalidInput(
                "error_contains", f"must be 1..{ERROR_CONTAINS_MAX_LENGTH} characters"
            )

    def narrowed_to(self, statuses: frozenset[JobStatus]) -> JobFilter | None:
        """This filter, limited to jobs in `statuses`; None when no job could match both."""
        wanted = statuses if not self.statuses else self.statuses & statuses
        if not wanted:
            return None
        return replace(self, statuses=wanted)


@dataclass(frozen=True, slots=True)
class ListCursor:
    """A position in a job list: the last job of the page before."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        micros = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        return encode_cursor(f"{_CURSOR_VERSION}:{micros}:{self.id.hex}")

    @classmethod
    def decode(cls, token: str) -> ListCursor:
        """A cursor as `encode` wrote it; InvalidInput for anything else."""
        try:
            version, micros, hex_id = decode_cursor(token).split(":")
            if version != _CURSOR_VERSION:
                raise ValueError(version)
            moment = _EPOCH + timedelta(microseconds=int(micros))
            return cls(moment, UUID(hex=hex_id))
        except (ValueError, OverflowError, OSError):
            raise invalid_cursor() from None


@dataclass(frozen=True, slots=True)
class Total:
    """How many jobs a list holds: exact, or an estimate beyond `EXACT_TOTAL_LIMIT`."""

    count: int
    is_estimate: bool


def list_total(counted: int, estimate: int | None, bound: int = EXACT_TOTAL_LIMIT) -> Total:
    """The total of a list from a count stopped after `bound + 1` jobs and, when it reached
    that, the database's estimate (None where it has none): never below the bound, since
    the count proved there are more."""
    if counted <= bound:
        return Total(counted, False)
    return Total(max(estimate or 0, bound), True)


class BulkAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"

    @property
    def applies_to(self) -> frozenset[JobStatus]:
        """The statuses of the jobs this action can change: a bulk action narrows its
        filter to them, so repeating it works through what is left and ends."""
        if self is BulkAction.CANCEL:
            return sources_for(JobStatus.CANCELLED)
        return RETRIABLE_STATUSES


def bulk_selection(job_filter: JobFilter, *, everything: bool) -> JobFilter:
    """The filter a bulk action works on. It must name at least one filter, or say
    `all: true` outright: an empty body never cancels a whole workspace by accident."""
    job_filter.validate()
    if job_filter.is_empty and not everything:
        raise InvalidInput("all", 'name at least one filter, or send "all": true')
    return job_filter
