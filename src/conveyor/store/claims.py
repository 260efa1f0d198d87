"""What both stores share of a claim: its plan, its groups, and what it answers.

A claim (`JobStore.claim_jobs`) goes:

1. `claim_plan`: the workspaces in its scope with jobs due, each with its weight and
   whether limits govern it or concurrency keys split it into groups;
2. the groups: a workspace's jobs without a key, and each key with claimable jobs
   (`claimable_keys`, a skip scan that starts where this process's last claim of the
   workspace stopped, so every key gets its turn however many there are);
3. the domain splits the claim among the groups (`split_fairly`). Where no limit governs,
   every job the shares pick starts, in one statement. Where limits govern, the claim takes
   the workspaces' claim locks, picks twice its share of candidates, reads the limits'
   counts and lets the domain admit (`fair_order`, `admit`), then starts those.

When it finds nothing, it says when to look again (`wake_in`): the next job to come due,
or the end of a rate window that held jobs back. Full and paused limits wake their
claimers when room appears (a limited job leaving RUNNING, a limit changing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple
from uuid import UUID

from conveyor.domain.capacity import TYPE_LIMIT_PREFIX, Group, Limit, LimitState, Rate
from conveyor.domain.jobs import ClaimRequest
from conveyor.store.connection import Row, ValueCodec
from conveyor.store.projections import Claimed
from conveyor.store.queries import Queries

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


class ClaimPlanner:
    """Builds a claim's statements' parts and groups; remembers, per workspace, the last
    concurrency key a claim reached, so the next one starts after it."""

    def __init__(self, queries: Queries, codec: ValueCodec) -> None:
        self.queries = queries
        self.codec = codec
        self._rotation: dict[UUID, str] = {}

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
        sql = self.queries["next_due"].compose(scope=scope)
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

    def keys_after(self, workspace_id: UUID) -> str:
        """Where the skip scan of a workspace's keys starts ('' sorts before every key)."""
        return self._rotation.get(workspace_id, "")

    def groups(
        self, plan: Sequence[PlannedWorkspace], keys: dict[UUID, list[str]], max_groups: int
    ) -> list[Group]:
        """The claim's groups, in turn order; keys beyond `max_groups` wait for the next
        claim, which starts after the last one taken here."""
        groups: list[Group] = []
        for workspace in plan:
            if workspace.unkeyed:
                groups.append(Group(workspace.id, None))
            taken = keys.get(workspace.id, [])[: max(0, max_groups - len(groups))]
            groups += [Group(workspace.id, key) for key in taken]
            if taken:
                self._rotation[workspace.id] = taken[-1]
        if len(self._rotation) > 10_000:
            self._rotation.clear()
        return groups

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
