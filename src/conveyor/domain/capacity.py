"""Capacity: how a claim shares workers fairly and which jobs the limits let start.

A claim's candidates come in *groups*: one per workspace and concurrency key (jobs without
a key form their workspace's own group). Every group with claimable work gets turns: within
a workspace the groups take turns one job at a time, and workspaces take turns in
proportion to their weight, so one tenant's (or one key's) million queued jobs never hold
back another's ten by more than a claim batch. Priority orders jobs within a group.

Limits are a workspace's: the one named by a job's concurrency key and the one named
`type:<its type>` govern it, when they exist. A limit may cap how many of its jobs run at
once (`max_running`), how many start in any window of `per_seconds` (`rate`), or stop them
starting (`paused`). Admission is decided here, on counts the store reads while it holds
the workspace's claim lock, so no limit is ever exceeded under any concurrency.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple, TypeVar
from uuid import UUID

from conveyor.domain.errors import InvalidInput
from conveyor.domain.job_types import JOB_TYPE_PATTERN, JOB_TYPE_RULE

Tie = TypeVar("Tie", bound=Any)
Item = TypeVar("Item")

TYPE_LIMIT_PREFIX: Final = "type:"
LIMIT_NAME_MAX_LENGTH: Final = 200
MAX_RUNNING_LIMIT: Final = 1_000_000
RATE_COUNT_LIMIT: Final = 1_000_000
RATE_WINDOW_LIMIT_SECONDS: Final = 7 * 24 * 3600.0
WEIGHT_MIN: Final = 1
WEIGHT_MAX: Final = 1000
DEFAULT_WEIGHT: Final = 1
UNPRINTABLE: Final = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
"""Characters no name may hold (a regular-expression class body): C0 and C1 controls, DEL,
and the bidirectional overrides and isolates, which reorder what a terminal shows. The CLI
writes the same out wherever it prints what a client stored (`cli/render.py`)."""
_LIMIT_NAME: Final = re.compile(rf"[^{UNPRINTABLE}]{{1,{LIMIT_NAME_MAX_LENGTH}}}\Z")


def type_limit_name(job_type: str) -> str:
    return f"{TYPE_LIMIT_PREFIX}{job_type}"


def limit_type(name: str) -> str | None:
    """The job type a limit named `type:<type>` governs; None for a concurrency key's."""
    return name[len(TYPE_LIMIT_PREFIX) :] if name.startswith(TYPE_LIMIT_PREFIX) else None


def limit_names(job_type: str, concurrency_key: str | None) -> tuple[str, ...]:
    """The limits that govern a job of this type and key, when they exist."""
    by_type = type_limit_name(job_type)
    if concurrency_key is None:
        return (by_type,)
    return (concurrency_key, by_type)


def validate_limit_name(name: str, field: str = "name") -> None:
    """Refuse (InvalidInput naming `field`) what cannot name a limit: the one rule for a
    limit's name and for a job's concurrency key, which names the limit that governs it,
    so no key is one that no limit could be made for."""
    if not _LIMIT_NAME.match(name):
        raise InvalidInput(field, f"must be 1..{LIMIT_NAME_MAX_LENGTH} printable characters")
    job_type = limit_type(name)
    if job_type is not None and not JOB_TYPE_PATTERN.match(job_type):
        raise InvalidInput(
            field, f"a type limit is {TYPE_LIMIT_PREFIX}<type>: the type {JOB_TYPE_RULE}"
        )


def validate_weight(weight: object) -> int:
    """The weight, if it is one (a whole number within the bounds); InvalidInput if not."""
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise InvalidInput("weight", "must be a whole number")
    if not WEIGHT_MIN <= weight <= WEIGHT_MAX:
        raise InvalidInput("weight", f"must be between {WEIGHT_MIN} and {WEIGHT_MAX}")
    return weight


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    per_seconds: float


UNMADE_VERSION: Final = 0
"""The version of a limit that does not exist: a PUT expecting it makes the limit only if
there is none yet (each PUT of a limit takes its workspace's next version, from 1)."""


@dataclass(frozen=True, slots=True)
class Limit:
    workspace_id: UUID
    name: str
    max_running: int | None = None
    rate: Rate | None = None
    paused: bool = False

    @property
    def shut(self) -> bool:
        """No job of it starts until the limit itself changes (paused, or `max_running` 0):
        its own jobs ending make no room."""
        return self.paused or self.max_running == 0

    def validate(self) -> None:
        validate_limit_name(self.name)
        if self.max_running is not None and not 0 <= self.max_running <= MAX_RUNNING_LIMIT:
            raise InvalidInput("max_running", f"must be between 0 and {MAX_RUNNING_LIMIT}")
        if self.rate is not None:
            if not 1 <= self.rate.count <= RATE_COUNT_LIMIT:
                raise InvalidInput("rate.count", f"must be between 1 and {RATE_COUNT_LIMIT}")
            if not 0 < self.rate.per_seconds <= RATE_WINDOW_LIMIT_SECONDS:
                raise InvalidInput("rate.per_seconds", "must be more than 0 and at most 7 days")


class WaitReason(StrEnum):
    """Why a limit lets none of its jobs start right now."""

    PAUSED = "paused"
    FULL = "full"
    """`max_running` of its jobs are running."""
    RATE = "rate"
    """`rate.count` of its jobs started in the last `rate.per_seconds`."""


def why_waiting(limit: Limit, running: int, started_in_window: int) -> WaitReason | None:
    """Why a limit lets none of its jobs start, with this many of them running and this
    many started within its rate window (None: it lets some)."""
    if limit.paused:
        return WaitReason.PAUSED
    if limit.max_running is not None and running >= limit.max_running:
        return WaitReason.FULL
    if limit.rate is not None and started_in_window >= limit.rate.count:
        return WaitReason.RATE
    return None


@dataclass(frozen=True, slots=True)
class LimitState:
    """A limit and what the store counted for it, under the claim lock."""

    limit: Limit
    running: int
    recent_starts: Sequence[datetime] = ()
    """When its jobs started within the last `rate.per_seconds`, oldest first."""

    def room(self, started: int = 0) -> int | None:
        """How many more of its jobs may start now, after `started` more did (None: no
        cap)."""
        if self.limit.paused:
            return 0
        caps = []
        if self.limit.max_running is not None:
            caps.append(self.limit.max_running - self.running - started)
        if self.limit.rate is not None:
            caps.append(self.limit.rate.count - len(self.recent_starts) - started)
        return max(0, min(caps)) if caps else None

    def blocked_by(self, started: int = 0) -> WaitReason | None:
        """Why none more may start, after `started` more did (None: some may)."""
        return why_waiting(self.limit, self.running + started, len(self.recent_starts) + started)

    def frees_at(self, started: int, now: datetime) -> datetime | None:
        """When the rate window lets one more start, after `started` more did at `now`
        (None when it is not the rate that stops it)."""
        rate = self.limit.rate
        if rate is None or self.blocked_by(started) != WaitReason.RATE:
            return None
        starts = [*self.recent_starts, *([now] * started)]
        return starts[len(starts) - rate.count] + timedelta(seconds=rate.per_seconds)


class Group(NamedTuple):
    """Claimable jobs of one workspace and concurrency key (None: jobs without one). A
    tuple: a claim hashes one per candidate, several times over."""

    workspace_id: UUID
    concurrency_key: str | None


def turn_mark(
    served: Mapping[UUID, float], weights: Mapping[UUID, int], workspace: UUID, position: int
) -> float:
    """Where a workspace's turn `position` (its first is 0) falls among every workspace's:
    on from what it was served (jobs / weight), one job every 1/weight. How `take_turns`
    orders a claim's groups and how the claim weighs their jobs (`fair_order`,
    `fit_shares`) both count, so they agree on who comes first."""
    return served.get(workspace, 0.0) + position / weights.get(workspace, DEFAULT_WEIGHT)


def take_turns(
    groups: Mapping[UUID, Sequence[Group]],
    weights: Mapping[UUID, int],
    served: Mapping[UUID, float],
) -> list[Group]:
    """The groups of a claim's workspaces in the order they get turns: each workspace's
    groups in the order given, the workspaces interleaved in proportion to their weight
    (one of weight 2 offers two groups for another's one), the one served least for its
    weight first (`served`: the jobs claims gave it, divided by its weight). A claim too
    small for every group (a worker with one free slot) so still goes round them all."""
    ranked: list[tuple[float, UUID, int, Group]] = []
    for workspace, members in groups.items():
        for position, group in enumerate(members):
            mark = turn_mark(served, weights, workspace, position)
            ranked.append((mark, workspace, position, group))
    ranked.sort(key=lambda item: item[:3])
    return [group for *_, group in ranked]


def split_fairly(
    groups: Sequence[Group], weights: Mapping[UUID, int], budget: int
) -> dict[Group, int]:
    """How many jobs each group may give a claim of `budget`: in all at most `budget`;
    workspaces in proportion to their weight, the groups of a workspace evenly; every
    group at least one while the budget allows (groups beyond it, in the order given, get
    none this time: callers rotate the order from claim to claim)."""
    if budget <= 0 or not groups:
        return {}
    if len(groups) >= budget:
        return dict.fromkeys(groups[:budget], 1)
    members: dict[UUID, list[Group]] = {}
    for group in groups:
        members.setdefault(group.workspace_id, []).append(group)
    total_weight = sum(weights.get(workspace, DEFAULT_WEIGHT) for workspace in members)
    exact = {
        group: budget * weights.get(workspace, DEFAULT_WEIGHT) / total_weight / len(inside)
        for workspace, inside in members.items()
        for group in inside
    }
    shares = {group: max(1, math.floor(value)) for group, value in exact.items()}
    left = budget - sum(shares.values())
    by_remainder = sorted(groups, key=lambda group: shares[group] - exact[group])
    for group in by_remainder:
        if left <= 0:
            break
        shares[group] += 1
        left -= 1
    while left < 0:  # the minimum of one each overshot: take back from the largest
        largest = max(groups, key=lambda group: shares[group])
        shares[largest] -= 1
        left += 1
    return shares


def fit_shares(
    order: Sequence[Group],
    shares: Mapping[Group, int],
    weights: Mapping[UUID, int],
    room: Mapping[Group, int | None],
    limit: int | None,
    served: Mapping[UUID, float],
) -> dict[Group, int]:
    """What a claim under limits picks of each group, knowing the `room` its limits leave
    each (None: no cap it knows of): its share, no more than its room; and, given `limit`
    (when the room known is all that can refuse a job), only the jobs `admit` would start
    of the whole shares in the order `fair_order` weighs them (`served` as there): the
    groups beyond those pick nothing (their turn is still to come). A group a limit holds
    (room 0) picks nothing either."""
    capped = {
        group: share if (left := room.get(group)) is None else min(share, left)
        for group, share in shares.items()
    }
    if limit is None or sum(capped.values()) <= limit:
        return capped
    rank = {group: index for index, group in enumerate(order)}
    unranked = len(rank)
    in_workspace: dict[UUID, list[tuple[int, int, int, tuple[Group, int]]]] = {}
    for group, share in shares.items():
        group_rank = rank.get(group, unranked)
        in_workspace.setdefault(group.workspace_id, []).extend(
            (turn, group_rank, turn, (group, turn)) for turn in range(share)
        )
    slots = _in_weighted_turns(in_workspace, weights, served)
    fitted = dict.fromkeys(capped, 0)
    taken = 0
    for group, turn in slots:
        if taken == limit:
            break
        if turn < capped[group]:  # a job beyond its room is weighed and refused
            fitted[group] += 1
            taken += 1
    return fitted


class Candidate(NamedTuple):
    """A claimable job as a claim weighs it (a tuple: a claim makes hundreds)."""

    id: UUID
    workspace_id: UUID
    type: str
    concurrency_key: str | None
    priority: int
    run_at: datetime

    @property
    def group(self) -> Group:
        return Group(self.workspace_id, self.concurrency_key)

    @property
    def urgency(self) -> tuple[int, datetime, UUID]:
        return (self.priority, self.run_at, self.id)


def fair_order(
    candidates: Iterable[Candidate],
    weights: Mapping[UUID, int],
    turns: Sequence[Group],
    served: Mapping[UUID, float],
) -> list[Candidate]:
    """Candidates in the order a claim takes them. Within a group: most urgent first.
    Within a workspace: its groups in turn (the first of each group, then the second…).
    Across workspaces: turns in proportion to weight (a workspace of weight 2 gets two
    jobs for another's one), counted on from what each was `served` before this claim (as
    `take_turns` counts: so a claim smaller than its candidates, one job at a time, still
    goes round the workspaces by weight). Ties go to the group earlier in `turns` (the
    order the claim offered its groups), then to the more urgent job."""
    rank = {group: index for index, group in enumerate(turns)}
    unranked = len(rank)
    by_group: dict[Group, list[Candidate]] = {}
    for candidate in candidates:
        by_group.setdefault(candidate.group, []).append(candidate)
    in_workspace: dict[UUID, list[tuple[int, int, tuple[int, datetime, UUID], Candidate]]] = {}
    for members in by_group.values():
        members.sort(key=lambda c: c.urgency)
        for turn, candidate in enumerate(members):
            in_workspace.setdefault(candidate.workspace_id, []).append(
                (turn, rank.get(candidate.group, unranked), candidate.urgency, candidate)
            )
    return _in_weighted_turns(in_workspace, weights, served)


def _in_weighted_turns(
    in_workspace: Mapping[UUID, list[tuple[int, int, Tie, Item]]],
    weights: Mapping[UUID, int],
    served: Mapping[UUID, float],
) -> list[Item]:
    """Each workspace's items — (their turn in their group, their group's rank, a tie-break,
    the item) — in the order a claim weighs them (`fair_order`, `fit_shares`): within a
    workspace its groups in turn (the first of each, then the second…); across workspaces
    in proportion to weight, from what each was `served` (jobs / weight) before; ties to
    the group ranked first, then to the tie-break."""
    ranked: list[tuple[float, int, Tie, Item]] = []
    for workspace, in_turn in in_workspace.items():
        in_turn.sort(key=lambda item: item[:3])
        ranked += [
            (turn_mark(served, weights, workspace, position), group_rank, tie, item)
            for position, (_, group_rank, tie, item) in enumerate(in_turn)
        ]
    ranked.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in ranked]


@dataclass(frozen=True, slots=True)
class Admission:
    """What a claim may start: `admitted`, in the order taken; `starts`, how many starts
    count against each limit; `blocked`, the limits that kept jobs waiting and why;
    `wake_at`, the earliest a rate window lets a waiting job start; `looked`, how many of
    the candidates it weighed before it was full (the rest had no turn)."""

    admitted: list[Candidate]
    starts: dict[tuple[UUID, str], int] = field(default_factory=dict)
    blocked: dict[tuple[UUID, str], WaitReason] = field(default_factory=dict)
    wake_at: datetime | None = None
    looked: int = 0


def admit(
    ordered: Sequence[Candidate],
    states: Mapping[tuple[UUID, str], LimitState],
    limit: int,
    now: datetime,
) -> Admission:
    """Take candidates in order, up to `limit`, each only while every limit governing it
    has room; a job a limit refuses is skipped (it waits QUEUED), not the ones after it."""
    admitted: list[Candidate] = []
    starts: dict[tuple[UUID, str], int] = {}
    blocked: dict[tuple[UUID, str], WaitReason] = {}
    looked = 0
    for candidate in ordered:
        if len(admitted) == limit:
            break
        looked += 1
        keys = [
            (candidate.workspace_id, name)
            for name in limit_names(candidate.type, candidate.concurrency_key)
            if (candidate.workspace_id, name) in states
        ]
        refused = [key for key in keys if states[key].room(starts.get(key, 0)) == 0]
        if refused:
            for key in refused:
                reason = states[key].blocked_by(starts.get(key, 0))
                blocked.setdefault(key, reason or WaitReason.FULL)
            continue
        for key in keys:
            starts[key] = starts.get(key, 0) + 1
        admitted.append(candidate)
    wake_times = [
        when
        for key in blocked
        if (when := states[key].frees_at(starts.get(key, 0), now)) is not None
    ]
    return Admission(admitted, starts, blocked, min(wake_times, default=None), looked)
