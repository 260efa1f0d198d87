"""The pure decisions of fair claims and limits (domain/capacity.py): turns, shares and
admission, without a database."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from conveyor.domain.capacity import (
    Candidate,
    Group,
    Limit,
    LimitState,
    WaitReason,
    admit,
    fair_order,
    fit_shares,
    limit_names,
    split_fairly,
    take_turns,
)
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import JobSpec

A, B = UUID(int=1), UUID(int=2)
NOW = datetime(2026, 12, 5, tzinfo=UTC)


def groups_of(workspace: UUID, *keys: str | None) -> list[Group]:
    return [Group(workspace, key) for key in keys]


def test_turns_interleave_workspaces_by_weight() -> None:
    order = take_turns(
        {A: groups_of(A, None, "a1", "a2", "a3"), B: groups_of(B, None, "b1")},
        {A: 2, B: 1},
        {},
    )
    assert [group.workspace_id for group in order] == [A, B, A, A, B, A]
    assert order[0] == Group(A, None), "a workspace's groups keep the order given"


def test_the_workspace_served_least_for_its_weight_goes_first() -> None:
    order = take_turns({A: groups_of(A, None), B: groups_of(B, None)}, {A: 1, B: 1}, {A: 3.0})
    assert order == [Group(B, None), Group(A, None)]


def test_a_small_claim_gives_one_each_to_the_groups_first_in_turn() -> None:
    groups = groups_of(A, None, "k1") + groups_of(B, None)
    assert split_fairly(groups, {A: 1, B: 1}, 2) == {Group(A, None): 1, Group(A, "k1"): 1}


def test_shares_follow_weight_and_never_pass_the_budget() -> None:
    shares = split_fairly(groups_of(A, None) + groups_of(B, None, "b1"), {A: 3, B: 1}, 40)
    assert shares == {Group(A, None): 30, Group(B, None): 5, Group(B, "b1"): 5}


def candidate(key: str | None, job_type: str = "t") -> Candidate:
    return Candidate(uuid4(), A, job_type, key, 5, NOW)


def test_admission_skips_what_a_full_limit_holds_and_takes_the_rest() -> None:
    states = {(A, "db"): LimitState(Limit(A, "db", max_running=2), running=1)}
    ordered = [candidate("db"), candidate("db"), candidate(None), candidate("db")]
    admission = admit(ordered, states, 10, NOW)
    assert admission.admitted == [ordered[0], ordered[2]]
    assert admission.blocked == {(A, "db"): WaitReason.FULL}
    assert admission.starts == {(A, "db"): 1}


def test_a_job_is_governed_by_its_key_and_its_type() -> None:
    assert limit_names("mail", "acme") == ("acme", "type:mail")
    assert limit_names("mail", None) == ("type:mail",)


def test_a_concurrency_key_may_not_take_a_type_limits_name() -> None:
    """`type:<type>` names the type's limit: a key of that form would be counted as the
    type's and pass the limit's count."""
    with pytest.raises(InvalidInput) as refused:
        JobSpec(type="t", concurrency_key="type:other").validate()
    assert refused.value.field == "concurrency_key"
    JobSpec(type="t", concurrency_key="types:other").validate()


@pytest.mark.parametrize("name", ["type:", "type:A", "type:bad type", "type:" + "t" * 101])
def test_a_type_limits_name_names_a_job_type(name: str) -> None:
    """A type limit that no job type could have would govern nothing: refused."""
    with pytest.raises(InvalidInput) as refused:
        Limit(uuid4(), name, max_running=1).validate()
    assert refused.value.field == "name"
    Limit(uuid4(), "type:" + "t" * 100, max_running=1).validate()
    Limit(uuid4(), "Type:A any key", max_running=1).validate()


def test_fitted_shares_take_what_fair_order_would_admit_and_no_more() -> None:
    """Room known for every group: a claim of 3 picks what `fair_order` then `admit` would
    start of the full shares, and nothing of a group a limit holds."""
    order = groups_of(A, "full", "a1", "a2") + groups_of(B, "b1")
    shares = dict.fromkeys(order, 2)
    room: dict[Group, int | None] = {Group(A, "full"): 0, Group(A, "a1"): 1}
    fitted = fit_shares(order, shares, {A: 1, B: 1}, room, 3, {})
    assert fitted == {Group(A, "full"): 0, Group(A, "a1"): 1, Group(A, "a2"): 0, Group(B, "b1"): 2}
    candidates = [
        Candidate(uuid4(), g.workspace_id, "t", g.concurrency_key, 5, NOW)
        for g in order
        for _ in range(2)
    ]
    states = {
        (A, "full"): LimitState(Limit(A, "full", max_running=0), 0),
        (A, "a1"): LimitState(Limit(A, "a1", max_running=1), 0),
    }
    admitted = admit(fair_order(candidates, {A: 1, B: 1}, order, {}), states, 3, NOW).admitted
    assert Counter(candidate.group for candidate in admitted) == {
        group: count for group, count in fitted.items() if count
    }


def test_without_a_limit_to_fit_shares_are_only_capped_by_room() -> None:
    order = groups_of(A, "a1", "a2")
    fitted = fit_shares(order, dict.fromkeys(order, 5), {A: 1}, {Group(A, "a1"): 2}, None, {})
    assert fitted == {Group(A, "a1"): 2, Group(A, "a2"): 5}


def test_a_heavier_workspace_fits_more_of_a_claim() -> None:
    order = groups_of(A, None) + groups_of(B, None)
    fitted = fit_shares(order, {Group(A, None): 10, Group(B, None): 10}, {A: 3, B: 1}, {}, 8, {})
    assert fitted == {Group(A, None): 6, Group(B, None): 2}


@pytest.mark.parametrize(
    ("served", "weights"),
    [
        ({}, {A: 3, B: 1}),
        ({A: 1 / 3, B: 0.0}, {A: 3, B: 1}),
        ({A: 1.0, B: 0.0}, {A: 3, B: 1}),
        ({A: 0.5, B: 0.4}, {A: 3, B: 1}),
        ({A: 2.0, B: 2.5}, {A: 1, B: 2}),
    ],
)
def test_weighing_a_claim_counts_as_its_turns_were_taken(
    served: dict[UUID, float], weights: dict[UUID, int]
) -> None:
    """A claim of one among two workspaces' candidates takes the group `take_turns` put
    first: both count on from what each workspace was served (`turn_mark`), so a claim
    under limits, which weighs more candidates than it asks for, goes round by weight too."""
    order = take_turns({A: groups_of(A, None), B: groups_of(B, None)}, weights, served)
    shares = dict.fromkeys(order, 1)
    candidates = [Candidate(uuid4(), group.workspace_id, "t", None, 5, NOW) for group in order]
    assert fair_order(candidates, weights, order, served)[0].group == order[0], served
    fitted = fit_shares(order, shares, weights, {}, 1, served)
    assert fitted == {order[0]: 1, order[1]: 0}, served
