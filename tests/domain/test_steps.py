"""Steps, without a database: the step table, and what recording or updating a step
proposes (values, stamps, whether its duration is measured, events in order)."""

from __future__ import annotations

import itertools
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput, StepConflict
from conveyor.domain.events import (
    STEP_COMPLETED,
    STEP_FAILED,
    STEP_OUTPUT,
    STEP_PROGRESS,
    STEP_SKIPPED,
    STEP_STARTED,
    NewEvent,
)
from conveyor.domain.steps import (
    STEP_NAME_MAX_LENGTH,
    STEP_OUTPUT_MAX_CHARS,
    STEP_TRANSITIONS,
    StepChange,
    StepStatus,
    append_output_tail,
    decide_new_step,
    decide_step_update,
    ensure_step_transition,
    validate_step_name,
)
from tests.domain.factories import make_step

P = StepStatus
ACTOR = "worker:w-1"
OUTCOMES = {P.COMPLETED: STEP_COMPLETED, P.FAILED: STEP_FAILED, P.SKIPPED: STEP_SKIPPED}
TERMINAL = sorted(OUTCOMES)
LEGAL_STEP_MOVES = {
    (P.PENDING, P.RUNNING),
    (P.PENDING, P.COMPLETED),
    (P.PENDING, P.FAILED),
    (P.PENDING, P.SKIPPED),
    (P.RUNNING, P.COMPLETED),
    (P.RUNNING, P.FAILED),
    (P.RUNNING, P.SKIPPED),
}


# ---------------------------------------------------------------------------------------
# The step table


def test_terminal_step_statuses_are_the_outcomes() -> None:
    assert {status for status in StepStatus if status.is_terminal} == set(OUTCOMES)
    assert all(not STEP_TRANSITIONS[status] for status in OUTCOMES)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(StepStatus, StepStatus)))
def test_every_step_move_is_decided_by_the_table(source: StepStatus, target: StepStatus) -> None:
    step_id = uuid4()
    legal = (source, target) in LEGAL_STEP_MOVES
    assert (target in STEP_TRANSITIONS[source]) == legal
    if legal or source == target:  # staying put is never a move
        ensure_step_transition(step_id, source, target)
        return
    with pytest.raises(StepConflict) as refused:
        ensure_step_transition(step_id, source, target)
    assert (refused.value.step_id, refused.value.source, refused.value.target) == (
        step_id,
        source.value,
        target.value,
    )


@pytest.mark.parametrize(("source", "target"), list(itertools.product(StepStatus, StepStatus)))
def test_an_update_follows_the_table(source: StepStatus, target: StepStatus) -> None:
    step = make_step(source)
    if (source, target) in LEGAL_STEP_MOVES:
        change = decide_step_update(step, actor=ACTOR, status=target)
        assert change.values["status"] == target
    elif source == target:
        assert "status" not in decide_step_update(step, actor=ACTOR, status=target).values
    else:
        with pytest.raises(StepConflict):
            decide_step_update(step, actor=ACTOR, status=target)


# ---------------------------------------------------------------------------------------
# Names and output


@pytest.mark.parametrize("name", ["x", "n" * STEP_NAME_MAX_LENGTH])
def test_step_names_within_the_limit_are_valid(name: str) -> None:
    validate_step_name(name)


@pytest.mark.parametrize("name", ["", "n" * (STEP_NAME_MAX_LENGTH + 1)])
def test_step_names_outside_the_limit_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_step_name(name)
    assert refused.value.field == "name"


def test_output_is_appended() -> None:
    assert append_output_tail(None, "abc") == "abc"
    assert append_output_tail("abc", "def") == "abcdef"
    assert append_output_tail("", "") == ""


def test_output_keeps_only_its_tail() -> None:
    assert append_output_tail("abcdef", "gh", limit=5) == "defgh"
    assert append_output_tail("abc", "de", limit=5) == "abcde"
    assert append_output_tail(None, "x" * (STEP_OUTPUT_MAX_CHARS + 3) + "end") == (
        "x" * (STEP_OUTPUT_MAX_CHARS - 3) + "end"
    )


@given(
    existing=st.none() | st.text(max_size=40),
    chunk=st.text(max_size=40),
    limit=st.integers(1, 50),
)
def test_output_tail_is_the_end_of_everything_written(
    existing: str | None, chunk: str, limit: int
) -> None:
    tail = append_output_tail(existing, chunk, limit)
    everything = (existing or "") + chunk
    assert len(tail) == min(limit, len(everything))
    assert everything.endswith(tail)


# ---------------------------------------------------------------------------------------
# decide_new_step


def test_a_pending_step_is_recorded_without_events() -> None:
    step_id = uuid4()
    assert decide_new_step(step_id, "build", 1, P.PENDING, ACTOR) == StepChange(
        values={"status": P.PENDING}
    )


def test_a_running_step_is_recorded_as_started() -> None:
    step_id = uuid4()
    assert decide_new_step(step_id, "build", 1, P.RUNNING, ACTOR) == StepChange(
        values={"status": P.RUNNING},
        stamp=frozenset({"started_at"}),
        events=(NewEvent(STEP_STARTED, ACTOR, {"name": "build", "ordinal": 1}, step_id),),
    )


@pytest.mark.parametrize("status", TERMINAL)
def test_a_step_recorded_after_the_fact_starts_and_finishes_at_once(status: StepStatus) -> None:
    step_id = uuid4()
    description = {"name": "lint", "ordinal": 3}
    assert decide_new_step(step_id, "lint", 3, status, ACTOR) == StepChange(
        values={"status": status},
        stamp=frozenset({"started_at", "completed_at"}),
        measure_duration=True,
        events=(
            NewEvent(STEP_STARTED, ACTOR, description, step_id),
            NewEvent(OUTCOMES[status], ACTOR, description, step_id),
        ),
    )


@pytest.mark.parametrize("name", ["", "n" * (STEP_NAME_MAX_LENGTH + 1)])
def test_a_new_step_needs_a_valid_name(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_new_step(uuid4(), name, 1, P.RUNNING, ACTOR)
    assert refused.value.field == "name"


# ---------------------------------------------------------------------------------------
# decide_step_update


def test_starting_a_pending_step_stamps_its_start() -> None:
    step = make_step(P.PENDING)
    assert decide_step_update(step, actor=ACTOR, status=P.RUNNING) == StepChange(
        values={"status": P.RUNNING},
        stamp=frozenset({"started_at"}),
        events=(NewEvent(STEP_STARTED, ACTOR, {"name": step.name, "ordinal": 2}, step.id),),
    )


@pytest.mark.parametrize("status", TERMINAL)
def test_finishing_a_running_step_stamps_its_end_and_measures_it(status: StepStatus) -> None:
    step = make_step(P.RUNNING)
    assert decide_step_update(step, actor=ACTOR, status=status) == StepChange(
        values={"status": status},
        stamp=frozenset({"completed_at"}),
        measure_duration=True,
        events=(NewEvent(OUTCOMES[status], ACTOR, {"name": step.name, "ordinal": 2}, step.id),),
    )


def test_finishing_a_pending_step_stamps_both_ends() -> None:
    change = decide_step_update(make_step(P.PENDING), actor=ACTOR, status=P.SKIPPED)
    assert change.stamp == {"started_at", "completed_at"}
    assert [event.type for event in change.events] == [STEP_SKIPPED]


def test_a_reported_duration_is_kept_instead_of_measured() -> None:
    change = decide_step_update(
        make_step(P.RUNNING), actor=ACTOR, status=P.COMPLETED, duration_ms=42
    )
    assert change.values == {"status": P.COMPLETED, "duration_ms": 42}
    assert not change.measure_duration


def test_tokens_are_stored_and_told_with_the_outcome() -> None:
    step = make_step(P.RUNNING)
    change = decide_step_update(
        step, actor=ACTOR, status=P.COMPLETED, tokens_input=100, tokens_output=None
    )
    assert change.values == {"status": P.COMPLETED, "tokens_input": 100}
    assert change.events == (
        NewEvent(
            STEP_COMPLETED,
            ACTOR,
            {"name": step.name, "ordinal": 2, "tokens_input": 100, "tokens_output": None},
            step.id,
        ),
    )


def test_output_is_kept_as_a_tail_and_sent_as_an_event() -> None:
    step = make_step(P.RUNNING, output="earlier ")
    change = decide_step_update(step, actor=ACTOR, output="line\n", output_stream="stderr")
    assert change == StepChange(
        values={"output": "earlier line\n"},
        events=(NewEvent(STEP_OUTPUT, ACTOR, {"stream": "stderr", "text": "line\n"}, step.id),),
    )


def test_progress_and_messages_are_events_only() -> None:
    step = make_step(P.RUNNING)
    change = decide_step_update(step, actor=ACTOR, message="halfway")
    assert change == StepChange(
        events=(
            NewEvent(
                STEP_PROGRESS, ACTOR, {"progress_percent": None, "message": "halfway"}, step.id
            ),
        ),
    )
    with_percent = decide_step_update(step, actor=ACTOR, progress_percent=100)
    assert with_percent.events[0].payload == {"progress_percent": 100, "message": None}


@pytest.mark.parametrize("percent", [-1, 101])
def test_step_progress_out_of_range_is_refused(percent: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_step_update(make_step(P.RUNNING), actor=ACTOR, progress_percent=percent)
    assert refused.value.field == "progress_percent"


def test_one_update_tells_output_then_progress_then_the_outcome() -> None:
    step = make_step(P.RUNNING)
    change = decide_step_update(
        step,
        actor=ACTOR,
        status=P.FAILED,
        output="oops",
        progress_percent=90,
        tokens_output=7,
    )
    assert [event.type for event in change.events] == [STEP_OUTPUT, STEP_PROGRESS, STEP_FAILED]
    assert change.values == {"output": "oops", "tokens_output": 7, "status": P.FAILED}


def test_an_update_that_changes_nothing_proposes_nothing() -> None:
    assert decide_step_update(make_step(P.RUNNING), actor=ACTOR) == StepChange()
    assert decide_step_update(make_step(P.RUNNING), actor=ACTOR, output="") == StepChange()


@pytest.mark.parametrize("status", TERMINAL)
def test_a_finished_step_takes_no_more_output(status: StepStatus) -> None:
    step = make_step(status)
    with pytest.raises(StepConflict):
        decide_step_update(step, actor=ACTOR, output="late")


@pytest.mark.parametrize("status", TERMINAL)
def test_a_finished_step_may_be_told_its_outcome_again_and_its_tokens(status: StepStatus) -> None:
    step = make_step(status)
    change = decide_step_update(step, actor=ACTOR, status=status, tokens_input=5)
    assert change == StepChange(values={"tokens_input": 5})


@given(
    source=st.sampled_from(StepStatus),
    target=st.none() | st.sampled_from(StepStatus),
    output=st.text(max_size=5),
    tokens=st.none() | st.integers(0, 10_000),
    percent=st.none() | st.integers(0, 100),
)
def test_an_update_changes_status_only_along_the_table(
    source: StepStatus,
    target: StepStatus | None,
    output: str,
    tokens: int | None,
    percent: int | None,
) -> None:
    step = make_step(source)
    illegal_move = target not in (None, source) and target not in STEP_TRANSITIONS[source]
    if illegal_move or (source.is_terminal and output):
        with pytest.raises(StepConflict):
            decide_step_update(step, actor=ACTOR, status=target, output=output, tokens_input=tokens)
        return
    change = decide_step_update(
        step,
        actor=ACTOR,
        status=target,
        output=output,
        tokens_input=tokens,
        progress_percent=percent,
    )
    moved = change.values.get("status")
    assert moved == (None if target in (None, source) else target)
    if moved is not None:
        assert isinstance(moved, StepStatus)
        assert moved in STEP_TRANSITIONS[source]
        assert change.events[-1].type == (STEP_STARTED if moved == P.RUNNING else OUTCOMES[moved])
    assert ("output" in change.values) == bool(output)
    assert all(event.step_id == step.id for event in change.events)
