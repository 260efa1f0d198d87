"""What both stores share of a claim: its plan, its groups, and what it answers.

A claim (`JobStore.claim_jobs`) goes:

1. `claim_plan`: the workspaces in its scope with jobs due, each with its weight and
   whether limits govern it or concurrency keys split it into groups;
2. the groups: a workspace's jobs without a key, and each key with claimable jobs
   (`claimable_keys`, a skip scan that starts where this process's last claim of the
   workspace stopped, so every key gets its turn however many there are);
3. the domain orders the groups in turns (`take_turns`: the workspace served least for
   its weight first, so even claims of one job go round) and splits the claim among them
   (`split_fairly`). Where no limit governs, every job the shares pick starts, in one
   statement. Where limits govern, the claim takes the workspaces' claim locks, reads the
   limits that may leave a group offered less than its share (their kept running counts:
   migration 0018), and fits the shares to them (`ClaimPlanner.fit`, `fit_shares`); where
   no type limit caps, every job those shares pick starts, in one statement, else the
   claim picks the candidates, lets the domain admit (`fair_order`, `admit`), then starts
   those. It offers turns for twice its size
   after a claim of its scope met a limit holding jobs back (`ClaimPlanner.budget`).

On PostgreSQL the plan is a round trip of its own, and a claim soon after one that took
all it asked for reuses it (`PLAN_REUSE_SECONDS`).

When it finds nothing, it says when to look again (`wake_in`): the next job to come due,
or the end of a rate window that held jobs back. Full and paused limits wake their
claimers when room appears (a limited job leaving RUNNING, a limit changing).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple
from uuid import UUID

from conveyor.domain.capacity import (
    Admission,
    Candidate,
    Group,
    Limit,
    LimitState,
    Rate,
    fit_shares,
    limit_type,
    split_fairly,
    take_turns,
)
from conveyor.domain.jobs import ClaimRequest
from conveyor.store.connection import Row, ValueCodec
from conveyor.store.projections import Claimed
from conveyor.store.queries import Queries

PLAN_REUSE_SECONDS = 0.2
"""How long a claim's plan serves the next claims of the same scope on PostgreSQL, while
each takes all it asks for: a draining worker claims every few milliseconds, and reading
the plan each time cost a fifth of its rate. A workspace whose first jobs come due
meanwhile waits at most this long for its turn. A limit committed before a claim's start
statement is seen (`picked_unlimited` takes nothing from a workspace that has limits, and
the claim plans afresh); one committed while that statement runs is concurrent with it,
as with a fresh plan, and governs the claims after it (`conveyor_no_limits`: that
statement holds the workspaces' claim locks shared, so a limit being created waits for it
and counts its starts). A plan under limits reads the limits afresh under the claim locks,
so one deleted meanwhile holds nothing back, and checks under them that none came to the
plan's other workspaces (`limits_came`), else plans afresh."""
HELD_BACK_SECONDS = PLAN_REUSE_SECONDS
"""How long a group whose key limit is shut (paused, or `max_running` 0: `Limit.shut`)
comes last in its workspace's turns, after the groups that may start something: its turn
would cost the workspace one without starting a job, so a workspace with open work as
well would get fewer jobs than its weight. Then it takes its place in the turns again and
is looked at afresh: a limit resumed or raised meanwhile waits this long, and for its
workspace's turns to come round to it (claims that start nothing offer every group in its
place). A shut group doubles the next claim's budget only when a claim started nothing
(`ClaimPlanner.took_limited`). A key full of its own running jobs, or over its rate,
keeps its place: its jobs ending, or its window, make room soon."""
CANDIDATES_PER_SLOT_UNDER_LIMITS = 2
"""Turns a claim under limits offers per job it asks for, after a limit held jobs back."""
_REMEMBERED = 10_000
"""Workspaces (and scopes, and groups offered by fruitless looks) the planner keeps before
it starts afresh."""

FOLD_SECONDS = 1.0
"""On PostgreSQL, how long a process's claims under limits go without folding a
workspace's leaves into its limits' counts while those counts cap nothing (a claim they
cap folds at once): the leaves a claim's counts may still hold, and the rows `GET …/limits`
subtracts, stay about a second's worth."""

LOOKBACK_MARGIN_SECONDS = 0.001
"""Added to a claim's own reckoning of the time between its two looks (`next_due`): the
database's clock and ours need not tick alike to the microsecond. A job of a type the claim
does not take, due in that margin, costs one needless look."""


class ClaimOutcome(NamedTuple, Generic[Claimed]):
    jobs: list[Claimed]
    wake_in: float | None = None
    """Seconds until a claim that found nothing should look again, if something comes due
    then (a scheduled job, a retry's backoff, a rate window); None: wait to be woken."""
    workspaces: tuple[UUID, ...] = ()
    """The workspaces it found claimable work in."""
    more: bool = False
    """Look again at once: some group may have more right away (it gave its whole share,
    or waited for the next claim's turn), key scans read ahead may have missed a key (it
    took them and started fewer than it asked), and under limits, the claims that started
    nothing have not yet gone round every group (`FruitlessLooks`)."""


@dataclass(frozen=True, slots=True)
class PlannedWorkspace:
    id: UUID
    weight: int
    limited: bool
    keyed: bool
    unkeyed: bool


def governed(plan: Sequence[PlannedWorkspace]) -> bool:
    """Whether limits govern any of a claim's workspaces (the claim takes the limited
    path: the claim locks, the limits' counts, fitted shares)."""
    return any(workspace.limited for workspace in plan)


class KeyScan(NamedTuple):
    """A workspace's keys with claimable jobs (`claimable_keys`): `later`, those after
    where its last claim stopped; `earlier`, those from the first key on, read when `later`
    ran short."""

    later: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()

    @classmethod
    def of(cls, rows: Iterable[Row]) -> KeyScan:
        """The scan `claimable_keys` answered: each key, and whether the scan had gone round
        to the first key when it found it."""
        later: list[str] = []
        earlier: list[str] = []
        for row in rows:
            (earlier if row["wrapped"] else later).append(row["concurrency_key"])
        return cls(tuple(later), tuple(earlier))

    def first(self, most: int) -> KeyScan:
        """The first `most` keys of the scan, in its order."""
        return KeyScan(self.later[:most], self.earlier[: max(0, most - len(self.later))])


class Turns(NamedTuple):
    """A claim's groups in the order offered (`order`), each one's share of the claim
    (`shares`); `waiting`: groups beyond the budget wait for the next claim (which may find
    work where this one's groups had none)."""

    order: list[Group]
    shares: dict[Group, int]
    waiting: bool
    served: Mapping[UUID, float]
    """What each workspace of the plan had been served (jobs / weight) when the turns were
    taken: a claim that weighs more than it asks for (`fit_shares`, `fair_order`) counts on
    from it, as `take_turns` did."""

    def more(self, started: int, limit: int) -> bool:
        """Whether a claim that started this many of `limit` should look again at once:
        groups waited for their turn, or one gave all its share while others came up
        short. (Under limits, a claim that started nothing also asks whether its claims
        have gone round every group since one started a job: `ClaimPlanner.took_limited`.)"""
        if started >= limit:
            return False
        return self.waiting or (len(self.shares) > 1 and started > 0)


class ScopeKey(NamedTuple):
    """The claims that share turns: those of the same workspaces and types."""

    workspaces: tuple[UUID, ...] | None
    types: tuple[str, ...] | None

    @classmethod
    def of(cls, request: ClaimRequest) -> ScopeKey:
        workspaces = None if request.workspaces is None else tuple(request.workspaces)
        types = None if request.types is None else tuple(request.types)
        return cls(workspaces, types)


def _bounded(remembered: dict[Any, Any], most: int = _REMEMBERED) -> None:
    """Forget the entries used longest ago beyond `most` (dicts keep insertion order, and
    every use re-inserts)."""
    while len(remembered) > most:
        del remembered[next(iter(remembered))]


@dataclass
class FruitlessLooks:
    """The looks of claims under limits that started nothing, since one started a job.
    Each workspace's turns go round its groups in order (`ScopeTurns.rotation`), so once
    a group of a workspace is offered again, every group of that workspace has had its
    turn; once that holds of every workspace of the plan, looking again at once would find
    the same, and the claim waits to be woken (room in a limit, a job coming due) or for
    the earliest rate window any of these looks met to end."""

    offered: dict[UUID, set[Group]] = field(default_factory=dict)
    rounded: set[UUID] = field(default_factory=set)
    """The workspaces one of whose groups came round again."""
    wake_at: float | None = None
    """`time.monotonic()` when the earliest rate window these looks met ends."""

    def saw(self, reached: Sequence[Group], wake_in: float | None) -> None:
        for group in reached:
            offered = self.offered.setdefault(group.workspace_id, set())
            if group in offered:
                self.rounded.add(group.workspace_id)
            offered.add(group)
        if wake_in is not None:
            at = time.monotonic() + wake_in
            self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def went_round(self, workspaces: Collection[UUID]) -> bool:
        return self.rounded.issuperset(workspaces)

    def too_many(self) -> bool:
        return sum(len(groups) for groups in self.offered.values()) > _REMEMBERED

    def wake_in(self) -> float | None:
        return None if self.wake_at is None else max(0.0, self.wake_at - time.monotonic())


class Fitted(NamedTuple):
    """What a claim under limits picks (`ClaimPlanner.fit`)."""

    shares: dict[Group, int]
    cut: set[Group]
    """Groups offered that pick nothing though no limit holds them: the claim is full
    before their turn, which is still to come."""
    held: bool
    """A limit holds some group offered (a shut one aside: `held_back`, which
    `ClaimPlanner.took_limited` weighs), or one may refuse jobs the claim cannot tell
    apart before it picks them (a type limit)."""
    capped: bool
    """A limit leaves some group offered less than its share, or a type limit may refuse
    jobs (on PostgreSQL, the claim folds the leaves and reads the counts again)."""
    final: bool
    """No limit can refuse a job the shares pick (none of the workspaces' type limits
    caps): the shares are what `admit` would start, and every job they pick starts, in the
    statement that picks it. Else the claim picks the candidates, and `admit` weighs each."""
    wake_at: datetime | None
    """When the earliest rate window holding a group offered ends."""
    held_back: frozenset[Group] = frozenset()
    """The groups offered whose key limit is shut (paused, or `max_running` 0): they pick
    nothing until the limit changes, however many of their jobs end."""
    held_types: tuple[tuple[UUID, str], ...] = ()
    """The type limits (workspace, name) with no room now (paused, full, over their rate):
    the candidates leave their jobs out (`not_held_back`), so the jobs of other types
    behind them are weighed, however many of theirs wait."""

    def key_limits(self) -> list[tuple[UUID, str]]:
        """The names of the key limits the jobs the shares pick may count in (those of
        them that exist are in the claim's limit states when they can cap)."""
        return [
            (group.workspace_id, group.concurrency_key)
            for group in self.shares
            if group.concurrency_key is not None
        ]


class Took(NamedTuple):
    """What a claim under limits took of its turns (`ClaimPlanner.took_limited`)."""

    given: Mapping[Group, int]
    """The jobs each group gave the claim."""
    unreached: Collection[Group]
    """The groups that had no turn: the full claim never weighed their candidates, or
    `fit` left them out (`Fitted.cut`)."""
    held: bool
    """A limit held jobs back (`ScopeTurns.held`)."""
    wake_at: datetime | None
    """When the earliest rate window holding jobs back ends."""
    held_back: frozenset[Group] = frozenset()
    """The groups whose key limit is shut (`Fitted.held_back`)."""

    @classmethod
    def fitted(cls, fitted: Fitted) -> Took:
        """Each group gave its fitted share (`Fitted.final`)."""
        return cls(fitted.shares, fitted.cut, fitted.held, fitted.wake_at, fitted.held_back)

    @classmethod
    def admitted(cls, fitted: Fitted, ordered: Sequence[Candidate], admission: Admission) -> Took:
        """Each group gave the jobs `admit` let start of it."""
        wake = [at for at in (fitted.wake_at, admission.wake_at) if at is not None]
        return cls(
            Counter(candidate.group for candidate in admission.admitted),
            unreached(ordered, admission) | fitted.cut,
            fitted.held or bool(admission.blocked),
            min(wake, default=None),
            fitted.held_back,
        )


def earliest(*wakes: float | None) -> float | None:
    """The soonest of a claim's reasons to look again (None: no such reason)."""
    known = [wake for wake in wakes if wake is not None]
    return min(known) if known else None


class NextLook(NamedTuple):
    """When a claim under limits should look again: at once (`more`), or when woken or in
    `wake_in` seconds (None: only when woken)."""

    more: bool
    wake_in: float | None


@dataclass
class ScopeTurns:
    """What a process remembers of the claims of one scope."""

    rotation: dict[UUID, str | None] = field(default_factory=dict)
    """Per workspace, the last group a claim offered a turn (None: its jobs without a
    key): the next claim's turns start after it."""
    served: dict[UUID, float] = field(default_factory=dict)
    """Per workspace, the jobs its turns gave claims (at least one a turn), divided by its
    weight."""
    active: frozenset[UUID] = frozenset()
    """The workspaces of the last plan."""
    plan: tuple[float, list[PlannedWorkspace]] | None = None
    """The last plan that claims took all they asked with, and when it was read."""
    fruitless: FruitlessLooks = field(default_factory=FruitlessLooks)
    """What claims under limits that started nothing have seen since one started a job."""
    held: bool = True
    """Whether the last claim under limits met one holding jobs back (`Fitted.held`): the
    next offers turns for twice its jobs (`ClaimPlanner.budget`). A scope's first claim
    assumes so."""
    held_back: dict[Group, float] = field(default_factory=dict)
    """Groups whose key limit a claim found shut, and when (`time.monotonic()`, oldest
    first): for `HELD_BACK_SECONDS` they come last in their workspace's turns
    (`ClaimPlanner._cycle`)."""


def keys_to_scan(budget: int) -> int:
    """How many keys a claim of `budget` reads: one more than it can offer turns to, which
    says whether others wait for theirs (`Turns.waiting`)."""
    return budget + 1


def named_limits(limits: Iterable[tuple[UUID, str, int]]) -> dict[str, list[Any]]:
    """The parameters of `named_limits` (a statement's {named}): each limit's workspace,
    name and the share of the group it would govern."""
    named = sorted(limits)
    return {
        "limit_ws": [workspace_id for workspace_id, _, _ in named],
        "limit_names": [name for _, name, _ in named],
        "limit_most": [most for _, _, most in named],
    }


def rated_workspaces(
    started: Iterable[tuple[UUID, str]], states: Mapping[tuple[UUID, str], LimitState]
) -> list[UUID]:
    """The workspaces where the claim started jobs counted in a rate window (`started`:
    the limits of the jobs started, among `states`): their starts older than any window
    are forgotten (`forget_old_starts`)."""
    return sorted(
        {key[0] for key in started if key in states and states[key].limit.rate is not None}
    )


def unreached(ordered: Sequence[Candidate], admission: Admission) -> set[Group]:
    """The groups none of whose candidates a full claim weighed."""
    weighed = {candidate.group for candidate in ordered[: admission.looked]}
    return {candidate.group for candidate in ordered[admission.looked :]} - weighed


class ClaimPlanner:
    """Builds a claim's statements' parts and groups, and remembers per scope (`ScopeKey`)
    where its claims' turns stopped, how much each workspace was served, and its last plan
    (on PostgreSQL, a claim soon after one that took all it asked for reuses it)."""

    def __init__(self, queries: Queries, codec: ValueCodec) -> None:
        self.queries = queries
        self.codec = codec
        self._scopes: dict[ScopeKey, ScopeTurns] = {}
        self._folded: dict[UUID, float] = {}

    def unfolded(self, workspaces: Sequence[UUID]) -> list[UUID]:
        """Those of `workspaces` whose leaves this process has not folded in the last
        `FOLD_SECONDS`."""
        now = time.monotonic()
        return [
            ws for ws in workspaces if now - self._folded.get(ws, -FOLD_SECONDS) >= FOLD_SECONDS
        ]

    def folded(self, workspaces: Sequence[UUID]) -> None:
        now = time.monotonic()
        for workspace_id in workspaces:
            self._folded.pop(workspace_id, None)
            self._folded[workspace_id] = now
        _bounded(self._folded)

    def _turns(self, request: ClaimRequest) -> ScopeTurns:
        key = ScopeKey.of(request)
        turns = self._scopes.pop(key, None) or ScopeTurns()
        self._scopes[key] = turns
        _bounded(self._scopes)
        return turns

    def scope(self, request: ClaimRequest, column: str = "w.id") -> tuple[str, dict[str, Any]]:
        """`{scope}`: the workspaces a claim may take from (`column` among them)."""
        if request.workspaces is None:
            return "1 = 1", {}
        return self.queries.in_list(column, "workspaces"), {"workspaces": list(request.workspaces)}

    def type_condition(self, request: ClaimRequest) -> tuple[str, dict[str, Any]]:
        """`{type_condition}`: the job types a claim takes."""
        if request.types is None:
            return "", {}
        return f"AND {self.queries.in_list('type', 'types')}", {"types": list(request.types)}

    def plan_statement(self, request: ClaimRequest) -> tuple[str, dict[str, Any]]:
        scope, scope_params = self.scope(request)
        types, type_params = self.type_condition(request)
        sql = self.queries["claim_plan"].compose(scope=scope, type_condition=types)
        return sql, {**scope_params, **type_params}

    def next_due_statement(
        self, request: ClaimRequest, lookback: float
    ) -> tuple[str, dict[str, Any]]:
        """`next_due`, counting jobs due in the last `lookback` seconds: the time since the
        claim's `claim_plan` (a job that came due meanwhile is looked for again at once)."""
        scope, params = self.scope(request, self.queries.unindexed("j.workspace_id"))
        sql = self.queries["next_due"].compose(scope=scope)
        return sql, {**params, "looked": -(lookback + LOOKBACK_MARGIN_SECONDS)}

    def limit_statement(
        self, turns: Turns, workspaces: Collection[UUID]
    ) -> tuple[str, dict[str, Any]]:
        """`limit_states` of workspaces, in one statement: the key limits of their groups
        offered that may leave one less than its share (the limits of those groups' keys,
        each with the group's share), and their type limits."""
        q = self.queries
        sql = q["limit_states"].compose(
            named=q["named_limits"].sql, workspaces=q.in_list("l.workspace_id", "workspaces")
        )
        read = set(workspaces)
        offered = (
            (group.workspace_id, group.concurrency_key, share)
            for group, share in turns.shares.items()
            if group.workspace_id in read and group.concurrency_key is not None
        )
        return sql, {**named_limits(offered), "workspaces": sorted(workspaces)}

    def starts_statement(self, rows: Sequence[Row]) -> tuple[str, dict[str, Any]] | None:
        """`recent_starts` of the limits among `limit_states`'s rows with a rate (None: no
        rate to count starts for)."""
        rated = [  # a share means nothing to recent_starts: 0
            (self.codec.uuid(row["workspace_id"]), row["name"], 0)
            for row in rows
            if row["rate_count"] is not None
        ]
        if not rated:
            return None
        q = self.queries
        return q["recent_starts"].compose(named=q["named_limits"].sql), named_limits(rated)

    def not_held_back(self, fitted: Fitted) -> tuple[str, dict[str, Any]]:
        """The candidates' condition (with `{type_condition}`) that leaves out the jobs of
        the type limits without room (`Fitted.held_types`), and its parameters."""
        if not fitted.held_types:
            return "", {}
        q = self.queries
        sql = q["not_held_back"].compose(named=q["named_limits"].sql)
        return sql, named_limits((ws, name, 0) for ws, name in fitted.held_types)

    def forget_statement(self, workspaces: Collection[UUID]) -> tuple[str, dict[str, Any]]:
        """`forget_old_starts` of workspaces."""
        q = self.queries
        sql = q["forget_old_starts"].compose(workspaces=q.in_list("workspace_id", "workspaces"))
        return sql, {"workspaces": sorted(workspaces)}

    def planned(self, rows: Sequence[Row]) -> list[PlannedWorkspace]:
        return [
            PlannedWorkspace(
                self.codec.uuid(row["id"]),
                int(row["weight"]),
                bool(row["limited"]),
                bool(row["keyed"]),
                bool(row["unkeyed"]),
            )
            for row in rows
        ]

    def keys_statement(
        self, request: ClaimRequest, ws: str = ":ws", after: str = ":after"
    ) -> tuple[str, dict[str, Any]]:
        """`claimable_keys` of the types a claim takes, and their parameters: of the
        workspace `ws` from `after` (parameters, or the columns of a statement that scans
        several workspaces)."""
        types, params = self.type_condition(request)
        sql = self.queries["claimable_keys"].compose(type_condition=types, ws=ws, after=after)
        return sql, params

    def budget(self, request: ClaimRequest, plan: Sequence[PlannedWorkspace]) -> int:
        """How many jobs a claim offers turns for: where limits govern and the last claim
        of its scope met one holding jobs back, twice as many (to offer the groups after
        those held); else as many as it asks for."""
        held = governed(plan) and self._turns(request).held
        return CANDIDATES_PER_SLOT_UNDER_LIMITS * request.limit if held else request.limit

    def keys_after(self, request: ClaimRequest, workspace_id: UUID) -> str:
        """Where the skip scan of a workspace's keys starts ('' sorts before every key)."""
        return self._turns(request).rotation.get(workspace_id) or ""

    def split(
        self,
        request: ClaimRequest,
        plan: Sequence[PlannedWorkspace],
        keys: Mapping[UUID, KeyScan],
        budget: int,
    ) -> Turns:
        """The groups offered in turn (`take_turns`) and how many jobs each may give a claim
        of `budget` (`split_fairly`): within a workspace, on round its cycle of groups (its
        jobs without a key, then each key in order) from where its last claim stopped;
        across workspaces, the one served least for its weight first. Groups beyond the
        budget wait for the next claim, which starts where this one stopped (`took`)."""
        scope = self._turns(request)
        weights = {workspace.id: workspace.weight for workspace in plan}
        # While claims start nothing, each group takes its place, so a look that went round
        # has offered every one (`FruitlessLooks`): one resumed meanwhile is among them.
        held_back = self._held_back(scope) if not scope.fruitless.offered else frozenset()
        cycles = {
            workspace.id: self._cycle(
                scope, workspace, keys.get(workspace.id, KeyScan()), held_back
            )
            for workspace in plan
        }
        served = self._served_floor(scope, plan)
        in_turn = take_turns(cycles, weights, served)
        groups = in_turn[:budget]
        return Turns(
            groups,
            split_fairly(groups, weights, budget),
            len(in_turn) > len(groups),
            {workspace.id: served[workspace.id] for workspace in plan},
        )

    def took(
        self,
        request: ClaimRequest,
        plan: Sequence[PlannedWorkspace],
        turns: Turns,
        given: Mapping[Group, int],
        unreached: Collection[Group] = (),
    ) -> list[Group]:
        """Remember a claim's turns; answer the groups that had one. `given`: the jobs each
        group gave the claim (its share where no limit governs or the fitted shares are
        final, the jobs admitted where `admit` weighed them); `unreached`: groups whose
        candidates the claim, full, never weighed.
        Every other group offered had its turn, and a turn costs its workspace at least one
        job served, a turn a limit spent included, so a workspace whose groups limits hold
        back does not stay first in line; its turns go on after its last group offered."""
        scope = self._turns(request)
        weights = {workspace.id: workspace.weight for workspace in plan}
        reached = [group for group in turns.order if group not in unreached]
        for group in reached:
            scope.rotation.pop(group.workspace_id, None)
            scope.rotation[group.workspace_id] = group.concurrency_key
            served = scope.served.get(group.workspace_id, 0.0)
            cost = max(given.get(group, 0), 1)
            scope.served[group.workspace_id] = served + cost / weights[group.workspace_id]
        scope.active = frozenset(weights)
        _bounded(scope.rotation)
        _bounded(scope.served)
        return reached

    def took_limited(
        self,
        request: ClaimRequest,
        plan: Sequence[PlannedWorkspace],
        turns: Turns,
        took: Took,
        started: int,
        now: datetime | None,
    ) -> NextLook:
        """`took` for a claim under limits, and when to look again. A claim that started
        nothing looks again at once only while some workspace has groups its looks have
        not offered since a claim last started a job (`FruitlessLooks`)."""
        reached = self.took(request, plan, turns, took.given, took.unreached)
        wake_in = None
        if took.wake_at is not None and now is not None:
            wake_in = max(0.0, (took.wake_at - now).total_seconds())
        scope = self._turns(request)
        # Shut groups come last from the next claim on: they double the budget only while
        # claims start nothing, to go round the groups sooner.
        scope.held = took.held or (not started and bool(took.held_back))
        self._remember_held_back(scope, took)
        if started:
            scope.fruitless = FruitlessLooks()
            return NextLook(turns.more(started, request.limit), wake_in)
        looks = scope.fruitless
        looks.saw(reached, wake_in)
        if turns.waiting and not looks.went_round([workspace.id for workspace in plan]):
            if looks.too_many():
                scope.fruitless = FruitlessLooks()
            return NextLook(True, wake_in)
        scope.fruitless = FruitlessLooks()
        return NextLook(False, looks.wake_in())

    @staticmethod
    def fit(
        turns: Turns,
        weights: Mapping[UUID, int],
        states: Mapping[tuple[UUID, str], LimitState],
        limit: int,
        now: datetime | None,
    ) -> Fitted:
        """What a claim under limits picks of each group offered (`fit_shares`: no more
        than its key limit's room; and where no type limit caps a job, only what a claim of
        `limit` would start: then the shares are final). `states` holds the limits that may
        leave a group less than its share (`limit_states`), and every type limit."""
        room: dict[Group, int | None] = {}
        wake: list[datetime] = []
        shut: set[Group] = set()
        for group in turns.shares:
            if group.concurrency_key is None:
                continue
            state = states.get((group.workspace_id, group.concurrency_key))
            if state is None:
                continue
            room[group] = left = state.room()
            if state.limit.shut:
                shut.add(group)
            if left == 0 and now is not None and (at := state.frees_at(0, now)) is not None:
                wake.append(at)
        typed = any(
            limit_type(name) is not None and state.room() is not None
            for (_, name), state in states.items()
        )
        held_types = tuple(
            sorted(
                key
                for key, state in states.items()
                if limit_type(key[1]) is not None and state.room() == 0
            )
        )
        for key in held_types:  # their candidates are left out: admit never sees them wait
            if now is not None and (at := states[key].frees_at(0, now)) is not None:
                wake.append(at)
        fitted = fit_shares(
            turns.order, turns.shares, weights, room, None if typed else limit, turns.served
        )
        cut = {group for group, share in fitted.items() if share == 0 and room.get(group) != 0}
        shares = {group: share for group, share in fitted.items() if share}
        capped = typed or any(
            left is not None and left < turns.shares[group] for group, left in room.items()
        )
        held = typed or any(left == 0 and group not in shut for group, left in room.items())
        wake_at = min(wake, default=None)
        return Fitted(shares, cut, held, capped, not typed, wake_at, frozenset(shut), held_types)

    @staticmethod
    def _cycle(
        scope: ScopeTurns,
        workspace: PlannedWorkspace,
        scan: KeyScan,
        held_back: Collection[Group],
    ) -> list[Group]:
        """A workspace's groups in turn from where its last claim stopped: the group
        without a key comes round before the first key. Those whose key limit was found
        shut of late (`held_back`) come after the rest."""
        unkeyed = [Group(workspace.id, None)] if workspace.unkeyed else []
        later = [Group(workspace.id, key) for key in scan.later]
        earlier = [Group(workspace.id, key) for key in scan.earlier]
        if workspace.id not in scope.rotation:
            cycle = unkeyed + later + earlier
        else:
            cycle = later + unkeyed + earlier
        if not held_back:
            return cycle
        return [group for group in cycle if group not in held_back] + [
            group for group in cycle if group in held_back
        ]

    @staticmethod
    def _held_back(scope: ScopeTurns) -> frozenset[Group]:
        """The groups whose key limit was found shut within `HELD_BACK_SECONDS` (older ones
        are forgotten, oldest first: they take their place in the turns again)."""
        held_back = scope.held_back
        if not held_back:
            return frozenset()
        now = time.monotonic()
        while held_back and now - next(iter(held_back.values())) >= HELD_BACK_SECONDS:
            del held_back[next(iter(held_back))]
        return frozenset(held_back)

    @staticmethod
    def _remember_held_back(scope: ScopeTurns, took: Took) -> None:
        """What a claim under limits found shut; a group that gave jobs is not."""
        now = time.monotonic()
        for group in took.given:
            scope.held_back.pop(group, None)
        for group in took.held_back:
            scope.held_back.pop(group, None)
            scope.held_back[group] = now
        _bounded(scope.held_back)

    @staticmethod
    def _served_floor(scope: ScopeTurns, plan: Sequence[PlannedWorkspace]) -> dict[UUID, float]:
        """What the plan's workspaces have been served, those that come back after a
        pause raised to the least of those that kept claiming: a pause banks no turns."""
        served = scope.served
        active = [served[w.id] for w in plan if w.id in scope.active and w.id in served]
        floor = min(active, default=0.0)
        for workspace in plan:  # re-inserted: used now
            served[workspace.id] = max(served.pop(workspace.id, floor), floor)
        return served

    def reusable_plan(self, request: ClaimRequest) -> list[PlannedWorkspace] | None:
        """The plan the last claim of the same scope read, while it is fresh
        (`PLAN_REUSE_SECONDS`) and claims with it took all they asked for."""
        kept = self._turns(request).plan
        if kept is None or time.monotonic() - kept[0] > PLAN_REUSE_SECONDS:
            return None
        return kept[1]

    def remember_plan(
        self, request: ClaimRequest, plan: list[PlannedWorkspace], read_at: float
    ) -> None:
        self._turns(request).plan = (read_at, plan)

    def forget_plan(self, request: ClaimRequest) -> None:
        self._turns(request).plan = None

    def wake_in(self, row: Row | None) -> float | None:
        """Seconds from the database's now to its next due job (`next_due`)."""
        if row is None or row["due"] is None:
            return None
        due, now = self.codec.timestamp(row["due"]), self.codec.timestamp(row["now"])
        return max(0.0, (due - now).total_seconds())

    def limit_states(
        self, rows: Sequence[Row], starts: Sequence[Row]
    ) -> tuple[dict[tuple[UUID, str], LimitState], datetime | None]:
        """The limits' counts as read under the claim locks (`limit_states`, with their
        `recent_starts`), and the database's now (None: no limit was read)."""
        codec = self.codec
        recent: dict[tuple[UUID, str], list[datetime]] = {}
        for row in starts:
            key = (codec.uuid(row["workspace_id"]), row["name"])
            recent.setdefault(key, []).append(codec.timestamp(row["started_at"]))
        states: dict[tuple[UUID, str], LimitState] = {}
        now = codec.timestamp(rows[0]["now"]) if rows else None
        for row in rows:
            rate = None
            if row["rate_count"] is not None:
                rate = Rate(int(row["rate_count"]), codec.seconds(row["rate_per_seconds"]))
            key = (codec.uuid(row["workspace_id"]), row["name"])
            limit = Limit(key[0], key[1], row["max_running"], rate, bool(row["paused"]))
            states[key] = LimitState(limit, int(row["running"]), recent.get(key, []))
        return states, now
