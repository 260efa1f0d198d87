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
   statement. Where limits govern, the claim takes the workspaces' claim locks, picks
   twice its share of candidates, reads the limits' counts and lets the domain admit
   (`fair_order`, `admit`), then starts those.

On PostgreSQL the plan is a round trip of its own, and a claim soon after one that took
all it asked for reuses it (`PLAN_REUSE_SECONDS`).

When it finds nothing, it says when to look again (`wake_in`): the next job to come due,
or the end of a rate window that held jobs back. Full and paused limits wake their
claimers when room appears (a limited job leaving RUNNING, a limit changing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple
from uuid import UUID

from conveyor.domain.capacity import (
    TYPE_LIMIT_PREFIX,
    Group,
    Limit,
    LimitState,
    Rate,
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
meanwhile waits at most this long for its turn; a limit created meanwhile is not missed
(`picked_unlimited` takes nothing from a workspace that has limits, and the claim plans
afresh)."""
_REMEMBERED = 10_000
"""Workspaces (and scopes) the planner keeps turns of before it starts afresh."""

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
    """Some group may have more right away: it gave its whole share, or waited for the next
    claim's turn."""


@dataclass(frozen=True, slots=True)
class PlannedWorkspace:
    id: UUID
    weight: int
    limited: bool
    keyed: bool
    unkeyed: bool


class KeyScan(NamedTuple):
    """A workspace's keys with claimable jobs: `later`, those after where its last claim
    stopped; `earlier`, those from the first key on, scanned when `later` ran short."""

    later: tuple[str, ...] = ()
    earlier: tuple[str, ...] = ()


class Turns(NamedTuple):
    """A claim's share of each group in its turn; `waiting`: groups beyond the budget wait
    for the next claim (which may find work where this one's groups had none)."""

    shares: dict[Group, int]
    waiting: bool

    def more(self, started: int, limit: int) -> bool:
        """Whether a claim that started this many of `limit` should look again at once:
        groups waited for their turn, or one gave all its share while others came up
        short."""
        if started >= limit:
            return False
        return self.waiting or (len(self.shares) > 1 and started > 0)


def _scope_key(request: ClaimRequest) -> tuple[object, object]:
    workspaces = None if request.workspaces is None else tuple(request.workspaces)
    types = None if request.types is None else tuple(request.types)
    return workspaces, types


class ClaimPlanner:
    """Builds a claim's statements' parts and groups; remembers, per workspace, the group
    a claim reached (the next starts after it) and how much it was served (the next
    starts with the workspace served least), and per scope the last plan (on
    PostgreSQL, a claim soon after one that took all it asked for reuses it)."""

    def __init__(self, queries: Queries, codec: ValueCodec) -> None:
        self.queries = queries
        self.codec = codec
        self._rotation: dict[UUID, str | None] = {}
        """Per workspace, the group its last claim reached (None: its jobs without a key)."""
        self._served: dict[UUID, float] = {}
        """Per workspace, the jobs claims gave it, divided by its weight."""
        self._active: set[UUID] = set()
        """The workspaces of the last claim's plan."""
        self._plans: dict[tuple[object, object], tuple[float, list[PlannedWorkspace]]] = {}

    def scope(self, request: ClaimRequest) -> tuple[str, dict[str, Any]]:
        """`{scope}`: the workspaces a claim may take from."""
        if request.workspaces is None:
            return "1 = 1", {}
        return self.queries.in_list("w.id", "workspaces"), {"workspaces": list(request.workspaces)}

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
        scope, params = self.scope(request)
        workspace = self.queries.unindexed("j.workspace_id")
        sql = self.queries["next_due"].compose(scope=scope, workspace=workspace)
        return sql, {**params, "looked": -(lookback + LOOKBACK_MARGIN_SECONDS)}

    def limit_statements(
        self, workspace_id: UUID, names: Sequence[str]
    ) -> tuple[str, str, dict[str, Any]]:
        """`limit_states` and `recent_starts` of the limits `names` of a workspace, and
        their parameters: the names, and among them the keys and the types they count."""
        q = self.queries
        keys = [name for name in names if not name.startswith(TYPE_LIMIT_PREFIX)]
        types = [name[len(TYPE_LIMIT_PREFIX) :] for name in names if name not in keys]
        states = q["limit_states"].compose(
            names=q.in_list("l.name", "names"),
            keys=q.in_list("concurrency_key", "keys"),
            types=q.in_list("type", "types"),
        )
        starts = q["recent_starts"].compose(names=q.in_list("s.name", "names"))
        return states, starts, {"ws": workspace_id, "names": names, "keys": keys, "types": types}

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

    def keys_statement(self, request: ClaimRequest) -> tuple[str, dict[str, Any]]:
        """`claimable_keys` of the types a claim takes, and their parameters."""
        types, params = self.type_condition(request)
        return self.queries["claimable_keys"].compose(type_condition=types), params

    def keys_after(self, workspace_id: UUID) -> str:
        """Where the skip scan of a workspace's keys starts ('' sorts before every key)."""
        return self._rotation.get(workspace_id) or ""

    def split(
        self, plan: Sequence[PlannedWorkspace], keys: Mapping[UUID, KeyScan], budget: int
    ) -> Turns:
        """How many jobs each group may give a claim of `budget` (`split_fairly`), the
        groups offered in turn (`take_turns`): within a workspace, on round its cycle of
        groups (its jobs without a key, then each key in order) from where its last claim
        stopped; across workspaces, the one served least for its weight first. Groups
        beyond the budget wait for the next claim, which starts where this one stopped."""
        weights = {workspace.id: workspace.weight for workspace in plan}
        cycles = {
            workspace.id: self._cycle(workspace, keys.get(workspace.id, KeyScan()))
            for workspace in plan
        }
        served = self._served_floor(plan)
        in_turn = take_turns(cycles, weights, served)
        groups = in_turn[:budget]
        for group in groups:
            self._rotation[group.workspace_id] = group.concurrency_key
        shares = split_fairly(groups, weights, budget)
        for group, share in shares.items():
            served[group.workspace_id] += share / weights[group.workspace_id]
        self._active = set(weights)
        if len(self._rotation) > _REMEMBERED or len(self._served) > _REMEMBERED:
            self._rotation.clear()
            self._served.clear()
        return Turns(shares, len(in_turn) > len(groups))

    def _cycle(self, workspace: PlannedWorkspace, scan: KeyScan) -> list[Group]:
        """A workspace's groups in turn from where its last claim stopped: the group
        without a key comes round before the first key."""
        unkeyed = [Group(workspace.id, None)] if workspace.unkeyed else []
        later = [Group(workspace.id, key) for key in scan.later]
        earlier = [Group(workspace.id, key) for key in scan.earlier]
        if workspace.id not in self._rotation:
            return unkeyed + later + earlier
        return later + unkeyed + earlier

    def _served_floor(self, plan: Sequence[PlannedWorkspace]) -> dict[UUID, float]:
        """What the plan's workspaces have been served, those that come back after a
        pause raised to the least of those that kept claiming: a pause banks no turns."""
        active = [self._served[w.id] for w in plan if w.id in self._active and w.id in self._served]
        floor = min(active, default=0.0)
        for workspace in plan:
            self._served[workspace.id] = max(self._served.get(workspace.id, floor), floor)
        return self._served

    def reusable_plan(self, request: ClaimRequest) -> list[PlannedWorkspace] | None:
        """The plan the last claim of the same scope read, while it is fresh
        (`PLAN_REUSE_SECONDS`) and that claim took all it asked for."""
        kept = self._plans.get(_scope_key(request))
        if kept is None or time.monotonic() - kept[0] > PLAN_REUSE_SECONDS:
            return None
        return kept[1]

    def remember_plan(
        self, request: ClaimRequest, plan: list[PlannedWorkspace], read_at: float
    ) -> None:
        if len(self._plans) > _REMEMBERED:
            self._plans.clear()
        self._plans[_scope_key(request)] = (read_at, plan)

    def forget_plan(self, request: ClaimRequest) -> None:
        self._plans.pop(_scope_key(request), None)

    def wake_in(self, row: Row | None) -> float | None:
        """Seconds from the database's now to its next due job (`next_due`)."""
        if row is None or row["due"] is None:
            return None
        due, now = self.codec.timestamp(row["due"]), self.codec.timestamp(row["now"])
        return max(0.0, (due - now).total_seconds())

    def limit_states(
        self,
        workspace_id: UUID,
        rows: Sequence[Row],
        starts: Sequence[Row],
    ) -> tuple[dict[tuple[UUID, str], LimitState], datetime | None]:
        """The limits' counts as read under the claim lock, and the database's now."""
        recent: dict[str, list[datetime]] = {}
        for row in starts:
            recent.setdefault(row["name"], []).append(self.codec.timestamp(row["started_at"]))
        states: dict[tuple[UUID, str], LimitState] = {}
        now = None
        for row in rows:
            now = self.codec.timestamp(row["now"])
            rate = None
            if row["rate_count"] is not None:
                rate = Rate(int(row["rate_count"]), float(row["rate_per_seconds"]))
            limit = Limit(workspace_id, row["name"], row["max_running"], rate, bool(row["paused"]))
            states[(workspace_id, row["name"])] = LimitState(
                limit, int(row["running"]), recent.get(row["name"], [])
            )
        return states, now
