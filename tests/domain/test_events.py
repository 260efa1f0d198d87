"""Events, without a database: which types a worker may append, who the actors are, and
how stream positions order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import (
    EVENT_TYPE_MAX_LENGTH,
    SYSTEM_EVENT_TYPES,
    Event,
    StreamPosition,
    key_actor,
    validate_custom_event_type,
    worker_actor,
)

# ---------------------------------------------------------------------------------------
# Custom event types


@pytest.mark.parametrize(
    "event_type",
    [
        "ai.tool_called",
        "gate.passed",
        "a.b",
        "deploy.stage_2.done",
        "x9.y",
        "a." + "b" * (EVENT_TYPE_MAX_LENGTH - 2),
        "jobs.done",  # only the "job." namespace is reserved, not every word starting so
    ],
)
def test_a_worker_may_append_namespaced_types(event_type: str) -> None:
    validate_custom_event_type(event_type)


@pytest.mark.parametrize(
    "event_type",
    [
        "",
        "tool_called",
        "AI.tool",
        "ai.Tool",
        "9ai.tool",
        "_ai.tool",
        "ai..tool",
        "ai.tool.",
        ".ai.tool",
        "ai.tool-called",
        "ai tool.x",
        "a." + "b" * (EVENT_TYPE_MAX_LENGTH - 1),
    ],
)
def test_malformed_types_are_refused(event_type: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_custom_event_type(event_type)
    assert refused.value.field == "type"


@pytest.mark.parametrize(
    "event_type", [*sorted(SYSTEM_EVENT_TYPES), "job.anything", "stream.reset", "stream.x.y"]
)
def test_types_conveyor_writes_are_reserved(event_type: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_custom_event_type(event_type)
    assert refused.value.field == "type"


def test_every_step_event_type_is_reserved_by_name() -> None:
    step_types = {t for t in SYSTEM_EVENT_TYPES if t.startswith("step.")}
    assert step_types == {
        "step.started",
        "step.progress",
        "step.output",
        "step.completed",
        "step.failed",
        "step.skipped",
    }
    validate_custom_event_type("step.annotated")  # the namespace itself stays open


def test_a_type_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_custom_event_type("ai.tool\n")


# ---------------------------------------------------------------------------------------
# Actors


def test_actors_name_the_worker_and_its_key() -> None:
    key = uuid4()
    assert worker_actor("w-1") == "worker:w-1"
    assert worker_actor("w-1", key) == f"worker:w-1/key:{key}"
    assert worker_actor("w-1", "k1") == "worker:w-1/key:k1"
    assert key_actor(key) == f"key:{key}"


# ---------------------------------------------------------------------------------------
# Stream positions

positions = st.builds(StreamPosition, tx=st.integers(0, 2**63 - 1), id=st.integers(0, 2**63 - 1))


@given(a=positions, b=positions)
def test_positions_order_by_transaction_then_id(a: StreamPosition, b: StreamPosition) -> None:
    assert (a < b) == ((a.tx, a.id) < (b.tx, b.id))
    assert (a == b) == ((a.tx, a.id) == (b.tx, b.id))
    assert [a < b, a == b, a > b].count(True) == 1  # total: exactly one holds
    assert max(a, b) == max((a.tx, a.id), (b.tx, b.id))


@given(a=positions, b=positions, c=positions)
def test_position_order_is_transitive(
    a: StreamPosition, b: StreamPosition, c: StreamPosition
) -> None:
    if a <= b and b <= c:
        assert a <= c
    assert sorted([a, b, c]) == sorted([a, b, c], key=lambda p: (p.tx, p.id))


@given(tx=st.integers(0, 2**62), event_id=st.integers(1, 2**62))
def test_the_start_of_a_transaction_stands_before_all_its_events(tx: int, event_id: int) -> None:
    start = StreamPosition(tx, 0)
    assert start < StreamPosition(tx, event_id)
    assert start < StreamPosition(tx + 1, 0)
    if tx > 0:
        assert StreamPosition(tx - 1, event_id) < start


def test_a_transaction_that_began_earlier_comes_first_whatever_its_ids() -> None:
    assert StreamPosition(tx=5, id=900) < StreamPosition(tx=6, id=10)


def test_an_event_stands_at_its_transaction_and_id() -> None:
    event = Event(
        id=42,
        job_id=uuid4(),
        workspace_id=uuid4(),
        job_type="t",
        seq=1,
        step_id=None,
        type="job.created",
        actor="system",
        payload={},
        timestamp=datetime(2024, 1, 1, tzinfo=UTC),
        tx=7,
    )
    assert event.position == StreamPosition(7, 42)
    on_sqlite = replace(event, tx=0)  # one writer: ids alone are the order
    assert on_sqlite.position == StreamPosition(0, 42)
