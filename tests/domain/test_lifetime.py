"""Retention settings, what the pruner deletes under them, and resuming a workspace stream
behind pruned events: decisions without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from conveyor.domain.errors import InvalidInput, StreamPositionGone
from conveyor.domain.events import StreamPosition
from conveyor.domain.job_lists import (
    EXACT_TOTAL_LIMIT,
    BulkAction,
    JobFilter,
    ListCursor,
    bulk_selection,
    list_total,
)
from conveyor.domain.lifetime import (
    DEFAULT_RETENTION,
    SECONDS_PER_DAY,
    PrunedEvents,
    PruneRule,
    Retention,
    prune_rules,
    resume_position,
)
from conveyor.domain.status import TERMINAL_STATUSES, JobStatus

S = JobStatus


def test_the_design_defaults() -> None:
    assert DEFAULT_RETENTION.as_dict() == {
        "completed_days": 14,
        "failed_days": 30,
        "cancelled_days": 14,
    }


def test_the_rules_skip_statuses_kept_forever_and_convert_days() -> None:
    rules = prune_rules(Retention(completed_days=0, failed_days=None, cancelled_days=2))
    assert rules == [
        PruneRule(S.COMPLETED, 0.0),
        PruneRule(S.CANCELLED, 2.0 * SECONDS_PER_DAY),
    ]
    assert {rule.status for rule in prune_rules(DEFAULT_RETENTION)} == TERMINAL_STATUSES
    assert prune_rules(Retention(None, None, None)) == []


PRUNED = PrunedEvents(StreamPosition(100, 50), highest_id=60)


def test_resuming_before_anything_was_pruned_is_exact() -> None:
    at = StreamPosition(7, 40)
    assert resume_position(40, at, None) == at
    assert resume_position(0, None, PRUNED) == StreamPosition(0, 0), "0: from the oldest kept"
    assert resume_position(99, None, None) is None, "never an event: the caller says 422"


def test_resuming_past_everything_pruned_is_exact() -> None:
    at = StreamPosition(100, 70)
    assert resume_position(70, at, PRUNED) == at
    assert resume_position(50, StreamPosition(100, 50), PRUNED) == StreamPosition(100, 50)


def test_resuming_behind_a_pruned_event_is_refused() -> None:
    with pytest.raises(StreamPositionGone):
        resume_position(40, StreamPosition(99, 40), PRUNED)  # kept, but events after it went
    with pytest.raises(StreamPositionGone):
        resume_position(55, None, PRUNED)  # pruned itself, and the furthest pruned is beyond
    assert resume_position(61, None, PRUNED) is None, "above every pruned id: never existed"


def test_resuming_at_the_furthest_pruned_event_itself_is_exact() -> None:
    # The client saw the last event the pruner deleted: nothing deleted lies beyond it.
    assert resume_position(50, None, PRUNED) == StreamPosition(100, 50)


def test_a_cursor_round_trips_and_anything_else_is_refused() -> None:
    moment = datetime(2026, 12, 10, 9, 30, 1, 123456, tzinfo=UTC)
    cursor = ListCursor(moment, UUID("01938f6e-0000-7000-8000-000000000001"))
    token = cursor.encode()
    assert "=" not in token
    assert ListCursor.decode(token) == cursor
    for bad in ("", "not a cursor", token[:-3], "MTo" + token, "Mjox"):
        with pytest.raises(InvalidInput) as refused:
            ListCursor.decode(bad)
        assert refused.value.field == "cursor"


def test_a_total_is_exact_up_to_the_bound_then_an_estimate_never_below_it() -> None:
    assert list_total(12, None).is_estimate is False
    assert list_total(EXACT_TOTAL_LIMIT, None).count == EXACT_TOTAL_LIMIT
    beyond = list_total(EXACT_TOTAL_LIMIT + 1, 2_500_000)
    assert (beyond.count, beyond.is_estimate) == (2_500_000, True)
    assert list_total(EXACT_TOTAL_LIMIT + 1, 50).count == EXACT_TOTAL_LIMIT
    assert list_total(EXACT_TOTAL_LIMIT + 1, None) == list_total(EXACT_TOTAL_LIMIT + 1, 0)


def test_a_bulk_action_needs_a_filter_or_all_and_works_on_what_it_can_change() -> None:
    with pytest.raises(InvalidInput) as refused:
        bulk_selection(JobFilter(), everything=False)
    assert refused.value.field == "all"
    assert bulk_selection(JobFilter(), everything=True) == JobFilter()
    queued = JobFilter(statuses=frozenset({S.QUEUED, S.COMPLETED}), type="x")
    assert bulk_selection(queued, everything=False) == queued
    assert queued.narrowed_to(BulkAction.CANCEL.applies_to) == JobFilter(
        statuses=frozenset({S.QUEUED}), type="x"
    )
    assert (
        JobFilter(statuses=frozenset({S.COMPLETED})).narrowed_to(BulkAction.CANCEL.applies_to)
        is None
    )
    assert JobFilter().narrowed_to(BulkAction.RETRY.applies_to) == JobFilter(
        statuses=frozenset({S.FAILED, S.CANCELLED})
    )


def test_filter_times_need_a_zone() -> None:
    naive = datetime(2026, 1, 1) + timedelta(hours=1)
    with pytest.raises(InvalidInput) as refused:
        JobFilter(created_after=naive).validate()
    assert refused.value.field == "created_after"
    with pytest.raises(InvalidInput):
        JobFilter(error_contains="x" * 201).validate()
