"""Steps: the ordered parts of a job (setup, commands, AI actions, gates) and their states."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from conveyor.domain import events
from conveyor.domain.errors import InvalidInput, StepConflict
from conveyor.domain.events import NewEvent


class StepPhase(StrEnum):
    SETUP = "SETUP"
    EXECUTION = "EXECUTION"
    VALIDATION = "VALIDATION"
    CLEANUP = "CLEANUP"


class StepType(StrEnum):
    COMMAND = "COMMAND"
    AI_ACTION = "AI_ACTION"
    GATE = "GATE"
    ARTIFACT = "ARTIFACT"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STEP_STATUSES


_TERMINAL_STEP_STATUSES: Final = frozenset(
    {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}
)

# A step may be recorded after the fact, so PENDING may jump straight to an outcome.
STEP_TRANSITIONS: Final[Mapping[StepStatus, frozenset[StepStatus]]] = {
    StepStatus.PENDING: frozenset(
        {StepStatus.RUNNING, StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}
    ),
    StepStatus.RUNNING: frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED}),
    StepStatus.COMPLETED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
}

STEP_NAME_MAX_LENGTH: Final = 200
STEP_OUTPUT_MAX_CHARS: Final = 64 * 1024
"""A step keeps the tail of its output; every chunk also goes out as a step.output event."""


def ensure_step_transition(step_id: UUID, source: StepStatus, target: StepStatus) -> None:
    if source == target:
        return
    if target not in STEP_TRANSITIONS[source]:
        raise StepConflict(step_id, source.value, target.value)


def append_output_tail(existing: str | None, chunk: str, limit: int = STEP_OUTPUT_MAX_CHARS) -> str:
    combined = (existing or "") + chunk
    return combined[-limit:] if len(combined) > limit else combined


@dataclass(frozen=True, slots=True)
class Step:
    id: UUID
    job_id: UUID
    ordinal: int
    name: str
    phase: StepPhase
    type: StepType
    status: StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    tokens_input: int | None
    tokens_output: int | None
    output: str | None


_OUTCOME_EVENTS: Final = {
    StepStatus.COMPLETED: events.STEP_COMPLETED,
    StepStatus.FAILED: events.STEP_FAILED,
    StepStatus.SKIPPED: events.STEP_SKIPPED,
}


@dataclass(frozen=True, slots=True)
class StepChange:
    """A proposed change to a step, written together with its events in one transaction.

    `stamp` names timestamp columns set to the database's clock; when `measure_duration`
    is set, `duration_ms` is taken from `started_at` to that clock.
    """

    values: Mapping[str, object] = field(default_factory=dict)
    stamp: frozenset[str] = frozenset()
    measure_duration: bool = False
    events: tuple[NewEvent, ...] = ()


def validate_step_name(name: str) -> None:
    if not 0 < len(name) <= STEP_NAME_MAX_LENGTH:
        raise InvalidInput("name", f"must be 1..{STEP_NAME_MAX_LENGTH} characters")


def decide_new_step(
    step_id: UUID, name: str, ordinal: int, status: StepStatus, actor: str
) -> StepChange:
    """A step as it is first recorded (PENDING, RUNNING, or already finished)."""
    validate_step_name(name)
    description = {"name": name, "ordinal": ordinal}
    stamp: set[str] = set()
    new_events: list[NewEvent] = []
    if status != StepStatus.PENDING:
        stamp.add("started_at")
        new_events.append(NewEvent(events.STEP_STARTED, actor, description, step_id))
    if status.is_terminal:
        stamp.add("completed_at")
        new_events.append(NewEvent(_OUTCOME_EVENTS[status], actor, description, step_id))
    return StepChange(
        values={"status": status},
        stamp=frozenset(stamp),
        measure_duration=status.is_terminal,
        events=tuple(new_events),
    )


def decide_step_update(
    step: Step,
    *,
    actor: str,
    status: StepStatus | None = None,
    output: str | None = None,
    output_stream: str = "stdout",
    tokens_input: int | None = None,
    tokens_output: int | None = None,
    duration_ms: int | None = None,
    progress_percent: int | None = None,
    message: str | None = None,
) -> StepChange:
    if step.status.is_terminal and (status not in (None, step.status) or output):
        raise StepConflict(step.id, step.status.value, (status or step.status).value)
    if status is not None:
        ensure_step_transition(step.id, step.status, status)
    values: dict[str, object] = {}
    stamp: set[str] = set()
    new_events: list[NewEvent] = []
    description = {"name": step.name, "ordinal": step.ordinal}
    if output:
        values["output"] = append_output_tail(step.output, output)
        new_events.append(
            NewEvent(events.STEP_OUTPUT, actor, {"stream": output_stream, "text": output}, step.id)
        )
    if tokens_input is not None:
        values["tokens_input"] = tokens_input
    if tokens_output is not None:
        values["tokens_output"] = tokens_output
    if progress_percent is not None or message is not None:
        if progress_percent is not None and not 0 <= progress_percent <= 100:
            raise InvalidInput("progress_percent", "must be between 0 and 100")
        new_events.append(
            NewEvent(
                events.STEP_PROGRESS,
                actor,
                {"progress_percent": progress_percent, "message": message},
                step.id,
            )
        )
    measure = False
    if status is not None and status != step.status:
        values["status"] = status
        if step.started_at is None:
            stamp.add("started_at")
        if status == StepStatus.RUNNING:
            new_events.append(NewEvent(events.STEP_STARTED, actor, description, step.id))
        else:
            stamp.add("completed_at")
            if duration_ms is None:
                measure = True
            outcome = dict(description)
            if tokens_input is not None or tokens_output is not None:
                outcome["tokens_input"] = tokens_input
                outcome["tokens_output"] = tokens_output
            new_events.append(NewEvent(_OUTCOME_EVENTS[status], actor, outcome, step.id))
    if duration_ms is not None:
        values["duration_ms"] = duration_ms
    return StepChange(
        values=values, stamp=frozenset(stamp), measure_duration=measure, events=tuple(new_events)
    )
