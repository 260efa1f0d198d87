"""The transition table itself: every pair of statuses, decided in one place."""

from __future__ import annotations

import itertools

import pytest

from conveyor.domain.backoff import backoff_delay
from conveyor.domain.jobs import (
    TERMINAL_STATUSES,
    JobStatus,
    can_transition,
    sources_for,
)

S = JobStatus
LEGAL_FOR_CALLERS = {
    (S.PENDING, S.QUEUED),
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(JobStatus, JobStatus)))
def test_every_pair_is_decided_by_the_table(source: JobStatus, target: JobStatus) -> None:
    assert can_transition(source, target) == ((source, target) in LEGAL_FOR_CALLERS)
    system_legal = LEGAL_FOR_CALLERS | {(S.RUNNING, S.QUEUED)}
    assert can_transition(source, target, by_system=True) == ((source, target) in system_legal)


def test_terminal_statuses_go_nowhere() -> None:
    for terminal in TERMINAL_STATUSES:
        assert terminal.is_terminal
        assert not any(can_transition(terminal, t, by_system=True) for t in JobStatus)


def test_sources_for_is_the_guard_of_each_target() -> None:
    assert sources_for(S.RUNNING) == {S.PENDING, S.QUEUED}
    assert sources_for(S.CANCELLED) == {S.PENDING, S.QUEUED, S.RUNNING}
    assert sources_for(S.QUEUED) == {S.PENDING}
    assert sources_for(S.QUEUED, by_system=True) == {S.PENDING, S.RUNNING}


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    assert backoff_delay(1, first=1.0, cap=60.0, jitter=1.0) == 1.0
    assert backoff_delay(3, first=1.0, cap=60.0, jitter=1.0) == 4.0
    assert backoff_delay(30, first=1.0, cap=60.0, jitter=1.0) == 60.0
    # jitter spreads the delay over the upper half of the bound
    assert backoff_delay(3, first=1.0, cap=60.0, jitter=0.0) == 2.0
