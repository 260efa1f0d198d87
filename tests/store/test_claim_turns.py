"""`ClaimPlanner`'s memory of turns, without a database: where a workspace's next claim
starts among its groups, and how a workspace that comes back after a pause is served."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from conveyor.domain.capacity import Admission, Group, Limit, LimitState, Rate
from conveyor.domain.jobs import ClaimRequest
from conveyor.store import claims
from conveyor.store.claims import (
    ClaimPlanner,
    Fitted,
    KeyScan,
    NextLook,
    PlannedWorkspace,
    Took,
)
from conveyor.store.queries import queries_for
from conveyor.store.sqlite import SqliteCodec

A, B = UUID(int=1), UUID(int=2)
REQUEST = ClaimRequest(None, 1, 60.0, "w", "a")
NONE_HELD = Took({}, set(), held=False, wake_at=None)
SOME_HELD = Took({}, set(), held=True, wake_at=None)
NOTHING_FITTED = Fitted({}, set(), held=True, capped=True, final=False, wake_at=None)


def planner() -> ClaimPlanner:
    return ClaimPlanner(queries_for("sqlite"), SqliteCodec())


def workspace(identifier: UUID, *, keyed: bool = False) -> PlannedWorkspace:
    return PlannedWorkspace(identifier, 1, limited=False, keyed=keyed, unkeyed=True)


def claim_one(
    plans: ClaimPlanner, plan: list[PlannedWorkspace], keys: dict[UUID, KeyScan]
) -> Group:
    turns = plans.split(REQUEST, plan, keys, 1)
    plans.took(REQUEST, plan, turns, turns.shares)
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


NOW = datetime(2026, 12, 5, tzinfo=UTC)


def scan(plans: ClaimPlanner, workspace_id: UUID, keys: list[str]) -> KeyScan:
    """The keys a claim scans, as `claimable_keys` reads them: after where the last stopped,
    then from the first."""
    after = plans.keys_after(REQUEST, workspace_id)
    later = [key for key in sorted(keys) if key > after][:3]
    earlier = [key for key in sorted(keys) if key <= after][: 3 - len(later)]
    return KeyScan(tuple(later), tuple(earlier))


def look_refused(
    plans: ClaimPlanner, plan: list[PlannedWorkspace], keys: dict[UUID, list[str]], **wake: float
) -> NextLook:
    """A claim of one under limits (budget 2) whose every candidate a limit refuses; a rate
    window ends `wake["in_seconds"]` from now, if given."""
    turns = plans.split(REQUEST, plan, {ws: scan(plans, ws, k) for ws, k in keys.items()}, 2)
    wake_at = NOW + timedelta(seconds=wake["in_seconds"]) if wake else None
    took = Took.admitted(NOTHING_FITTED, [], Admission([], wake_at=wake_at))
    return plans.took_limited(REQUEST, plan, turns, took, 0, NOW)


def limited(identifier: UUID, *, keyed: bool, unkeyed: bool) -> PlannedWorkspace:
    return PlannedWorkspace(identifier, 1, limited=True, keyed=keyed, unkeyed=unkeyed)


def test_claims_limits_hold_back_look_on_until_every_workspace_went_round() -> None:
    """A's one group comes round on every claim; B's eight keys take four: the claims look
    again at once until B's have all been offered, then wait to be woken."""
    plans = planner()
    plan = [limited(A, keyed=False, unkeyed=True), limited(B, keyed=True, unkeyed=False)]
    keys = {B: [f"k{n}" for n in range(8)]}
    looks = [look_refused(plans, plan, keys).more for _ in range(12)]
    went_round = looks.index(False)
    assert looks[:went_round] == [True] * went_round
    assert went_round >= 8, "B's eight keys were offered one a look before the claims stopped"
    assert looks[went_round + 1] is True, "a claim woken afterwards looks round again"


def test_the_earliest_rate_window_any_fruitless_look_met_is_kept_for_the_wait() -> None:
    plans = planner()
    plan = [limited(A, keyed=True, unkeyed=False)]
    keys = {A: ["k1", "k2", "k3", "k4"]}
    first = look_refused(plans, plan, keys, in_seconds=2.0)
    assert first.more
    last = look_refused(plans, plan, keys)
    while last.more:
        last = look_refused(plans, plan, keys)
    assert last.wake_in is not None
    assert 1.5 < last.wake_in <= 2.0


def test_a_claim_that_starts_a_job_begins_the_round_afresh() -> None:
    plans = planner()
    plan = [limited(A, keyed=True, unkeyed=False)]
    keys = {A: ["k1", "k2", "k3", "k4"]}
    assert look_refused(plans, plan, keys).more
    turns = plans.split(REQUEST, plan, {A: scan(plans, A, keys[A])}, 2)
    plans.took_limited(
        REQUEST, plan, turns, Took.admitted(NOTHING_FITTED, [], Admission([])), 1, NOW
    )
    assert [look_refused(plans, plan, keys).more for _ in range(2)] == [True, True]


def test_claims_offer_twice_their_jobs_turns_only_after_a_limit_held_some_back() -> None:
    plans = planner()
    plan = [PlannedWorkspace(A, 1, limited=True, keyed=True, unkeyed=False)]
    request = ClaimRequest(None, 10, 60.0, "w", "a")
    assert plans.budget(request, plan) == 20, "a scope's first claim assumes limits hold"
    turns = plans.split(request, plan, {A: KeyScan(("k",))}, 20)
    plans.took_limited(request, plan, turns, NONE_HELD, 1, NOW)
    assert plans.budget(request, plan) == 10, "none held: as many turns as jobs"
    plans.took_limited(request, plan, turns, SOME_HELD, 1, NOW)
    assert plans.budget(request, plan) == 20
    unlimited = [workspace(A)]
    assert plans.budget(request, unlimited) == 10


def test_shares_are_final_unless_a_type_limit_caps_and_a_rate_held_group_says_when() -> None:
    """`fit`: with key limits alone the fitted shares are what starts (`Fitted.final`); a
    group its rate holds says when the window lets one more start; a capping type limit
    leaves the candidates to `admit`."""
    plans = planner()
    plan = [PlannedWorkspace(A, 1, limited=True, keyed=True, unkeyed=False)]
    request = ClaimRequest(None, 4, 60.0, "w", "a")
    turns = plans.split(request, plan, {A: KeyScan(("k1", "k2"))}, 4)
    started = NOW - timedelta(seconds=1)
    rated = Limit(A, "k1", rate=Rate(1, 10.0))
    states = {(A, "k1"): LimitState(rated, running=0, recent_starts=[started])}
    fitted = plans.fit(turns, {A: 1}, states, request.limit, NOW)
    assert fitted.final
    assert fitted.held
    assert fitted.shares == {Group(A, "k2"): 2}
    assert fitted.wake_at == started + timedelta(seconds=10)
    assert fitted.key_limits() == [(A, "k2")]
    typed = {**states, (A, "type:t"): LimitState(Limit(A, "type:t", max_running=1), running=0)}
    assert not plans.fit(turns, {A: 1}, typed, request.limit, NOW).final


def test_only_a_shut_key_limit_holds_its_group_back_from_the_turns() -> None:
    """`Fitted.held_back`: a paused key limit, or one of `max_running` 0, stays shut until
    it changes; a key full of its own running jobs, or over its rate, makes room soon and
    keeps its place."""
    plans = planner()
    plan = [PlannedWorkspace(A, 1, limited=True, keyed=True, unkeyed=False)]
    request = ClaimRequest(None, 4, 60.0, "w", "a")
    keys = ("paused", "none", "full", "rated")
    turns = plans.split(request, plan, {A: KeyScan(keys)}, 4)
    recent = [NOW - timedelta(seconds=1)]
    states = {
        (A, "paused"): LimitState(Limit(A, "paused", paused=True), running=0),
        (A, "none"): LimitState(Limit(A, "none", max_running=0), running=0),
        (A, "full"): LimitState(Limit(A, "full", max_running=1), running=1),
        (A, "rated"): LimitState(Limit(A, "rated", rate=Rate(1, 10.0)), 0, recent),
    }
    fitted = plans.fit(turns, {A: 1}, states, request.limit, NOW)
    assert fitted.shares == {}
    assert fitted.held_back == {Group(A, "paused"), Group(A, "none")}


def test_a_shut_key_comes_after_the_rest_for_a_while_then_takes_its_place_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(claims.time, "monotonic", lambda: clock[0])
    plans = planner()
    plan = [PlannedWorkspace(A, 1, limited=True, keyed=True, unkeyed=True)]
    request = ClaimRequest(None, 3, 60.0, "w", "a")
    scan = {A: KeyScan((), ("k1", "k2"))}  # after "k2": none later; from the first key on
    turns = plans.split(request, plan, scan, 3)
    shut = Group(A, "k1")
    took = Took({Group(A, None): 1, Group(A, "k2"): 1}, set(), True, None, frozenset({shut}))
    plans.took_limited(request, plan, turns, took, 2, NOW)

    def order() -> list[str | None]:
        return [group.concurrency_key for group in plans.split(request, plan, scan, 3).order]

    assert order() == [None, "k2", "k1"], "after the workspace's other groups"
    clock[0] += claims.HELD_BACK_SECONDS
    assert order() == [None, "k1", "k2"], "forgotten: in its place again"
    plans.took_limited(request, plan, turns, took, 2, NOW)
    assert order() == [None, "k2", "k1"]
    gave = Took({shut: 1}, set(), False, None)
    plans.took_limited(request, plan, turns, gave, 1, NOW)
    assert order() == [None, "k1", "k2"], "a group that gave a job is not held back"


def test_claims_that_start_nothing_offer_a_shut_key_in_its_place() -> None:
    """While claims start nothing, a key found shut takes its place in the turns, so the
    looks that go round offer it: one resumed meanwhile starts without waiting for a poll.
    A shut key doubles the budget only while claims start nothing."""
    plans = planner()
    plan = [PlannedWorkspace(A, 1, limited=True, keyed=True, unkeyed=False)]
    request = ClaimRequest(None, 1, 60.0, "w", "a")
    scan = {A: KeyScan((), ("k1", "k2", "k3"))}
    turns = plans.split(request, plan, scan, 2)
    took = Took({}, {Group(A, "k3")}, False, None, frozenset({Group(A, "k1")}))
    plans.took_limited(request, plan, turns, took, 0, NOW)  # started nothing
    assert plans.budget(request, plan) == 2, "to go round the groups sooner"
    order = [group.concurrency_key for group in plans.split(request, plan, scan, 2).order]
    assert order[:2] == ["k1", "k2"], "in its place while the looks are fruitless"
    states = {(A, "k1"): LimitState(Limit(A, "k1", paused=True), running=0)}
    fitted = plans.fit(turns, {A: 1}, states, request.limit, NOW)
    assert not fitted.held, "a shut group alone does not double the budget"
    gave = Took({Group(A, "k2"): 1}, set(), fitted.held, None, fitted.held_back)
    plans.took_limited(request, plan, turns, gave, 1, NOW)
    assert plans.budget(request, plan) == 1
