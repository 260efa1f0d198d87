"""`ClaimPlanner`'s memory of turns, without a database: where a workspace's next claim
starts among its groups, and how a workspace that comes back after a pause is served."""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from conveyor.domain.capacity import Group
from conveyor.domain.jobs import ClaimRequest
from conveyor.store.claims import ClaimPlanner, KeyScan, PlannedWorkspace
from conveyor.store.queries import queries_for
from conveyor.store.sqlite import SqliteCodec

A, B = UUID(int=1), UUID(int=2)
REQUEST = ClaimRequest(None, 1, 60.0, "w", "a")


def planner() -> ClaimPlanner:
    return ClaimPlanner(queries_for("sqlite"), SqliteCodec())


def workspace(identifier: UUID, *, keyed: bool = False) -> PlannedWorkspace:
    return PlannedWorkspace(identifier, 1, limited=False, keyed=keyed, unkeyed=True)


def claim_one(
    plans: ClaimPlanner, plan: list[PlannedWorkspace], keys: dict[UUID, KeyScan]
) -> Group:
    turns = plans.split(REQUEST, plan, keys, 1)
    plans.took(REQUEST, plan, turns, turns.shares, 1)
    [group] = turns.shares
    return group


def test_the_jobs_without_a_key_come_round_before_the_first_key() -> None:
    plans = planner()
    plan = [workspace(A, keyed=True)]
    taken = []
    for _ in range(6):
        after = plans.keys_after(REQUEST, A)
        keys = ["k1", "k2"]
        later = tuple(key for key in keys if key > after)
        earlier = tuple(key for key in keys if key <= after) if after else ()
        taken.append(claim_one(plans, plan, {A: KeyScan(later, earlier)}).concurrency_key)
    assert taken == [None, "k1", "k2", None, "k1", "k2"]


def test_a_workspace_back_from_a_pause_banks_no_turns() -> None:
    """A claimed alone for a while; when B comes back it gets every other claim, not a run
    of claims until it has caught up with A."""
    plans = planner()
    for _ in range(10):
        assert claim_one(plans, [workspace(A)], {}).workspace_id == A
    both = [workspace(A), workspace(B)]
    taken = Counter(claim_one(plans, both, {}).workspace_id for _ in range(6))
    assert taken == {A: 3, B: 3}
