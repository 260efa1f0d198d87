"""Workspaces, without a database: slugs, and what each role may do."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.workspaces import (
    INSTANCE_ROLE_PERMISSIONS,
    ROLE_PERMISSIONS,
    ApiKey,
    Permission,
    Role,
    permission_to_report,
    role_allows,
    validate_workspace_slug,
)

# ---------------------------------------------------------------------------------------
# Slugs


@pytest.mark.parametrize(
    "slug", ["a", "7", "acme", "acme-corp", "a-b-c", "x" * 63, "a" + "-" * 61 + "z"]
)
def test_valid_slugs(slug: str) -> None:
    validate_workspace_slug(slug)


@pytest.mark.parametrize(
    "slug",
    ["", "-acme", "acme-", "-", "Acme", "acme_corp", "acme.corp", "acme corp", "é", "x" * 64],
)
def test_invalid_slugs_are_refused_as_the_name(slug: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_workspace_slug(slug)
    assert refused.value.field == "name"


@given(st.text(st.sampled_from("ab9-_A."), max_size=70))
def test_a_slug_is_lowercase_letters_digits_and_inner_hyphens(slug: str) -> None:
    valid = (
        0 < len(slug) <= 63
        and all(c in "ab9-" for c in slug)
        and not slug.startswith("-")
        and not slug.endswith("-")
    )
    try:
        validate_workspace_slug(slug)
    except InvalidInput:
        assert not valid
    else:
        assert valid


def test_a_slug_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidInput):
        validate_workspace_slug("acme\n")


# ---------------------------------------------------------------------------------------
# Roles

P = Permission
EXPECTED = {
    Role.CLIENT: {P.READ, P.CREATE, P.CANCEL, P.RETRY, P.STREAM, P.MANAGE_SCHEDULES},
    Role.WORKER: {P.READ, P.STREAM, P.CLAIM, P.START, P.REPORT, P.REPORT_WITHOUT_LEASE},
    Role.ADMIN: set(Permission) - {P.SET_WEIGHT},
}


@pytest.mark.parametrize(("role", "permission"), list(itertools.product(Role, Permission)))
def test_each_role_may_do_exactly_its_part(role: Role, permission: Permission) -> None:
    assert role_allows(role, permission) == (permission in EXPECTED[role])


def test_only_an_instance_admin_sets_a_workspaces_weight() -> None:
    """Weight shares workers between workspaces: no workspace's own key may raise its own."""
    assert [role for role in Role if role_allows(role, P.SET_WEIGHT)] == []
    allowed = [role for role in Role if role_allows(role, P.SET_WEIGHT, instance=True)]
    assert allowed == [Role.ADMIN]


def test_an_instance_worker_starts_no_job_by_id() -> None:
    """It works on the jobs it holds: those its claims gave it, in fair turns."""
    assert not role_allows(Role.WORKER, P.START, instance=True)
    assert role_allows(Role.ADMIN, P.START, instance=True)


def test_an_instance_worker_reports_only_with_a_lease() -> None:
    """Without a lease a report may touch any PENDING or QUEUED job whose id it names, and
    is answered with the whole job: fine for the job's own workspace, not for a key that
    serves every workspace and may read none."""
    assert permission_to_report(uuid4()) == P.REPORT
    assert permission_to_report(None) == P.REPORT_WITHOUT_LEASE
    assert role_allows(Role.WORKER, P.REPORT, instance=True)
    assert not role_allows(Role.WORKER, P.REPORT_WITHOUT_LEASE, instance=True)
    assert role_allows(Role.WORKER, P.REPORT_WITHOUT_LEASE)
    assert role_allows(Role.ADMIN, P.REPORT_WITHOUT_LEASE, instance=True)


@pytest.mark.parametrize("table", [ROLE_PERMISSIONS, INSTANCE_ROLE_PERMISSIONS])
def test_reporting_without_a_lease_is_a_narrowing_of_reporting(
    table: Mapping[Role, frozenset[Permission]],
) -> None:
    """A report route asks for REPORT first, then for what its lease asks
    (`permission_to_report`): a key with the second but not the first would be a table
    that says one thing and routes that do another."""
    for role, permissions in table.items():
        assert P.REPORT_WITHOUT_LEASE not in permissions or P.REPORT in permissions, role


def test_only_an_admin_manages_keys() -> None:
    assert [role for role in Role if role_allows(role, P.MANAGE_KEYS)] == [Role.ADMIN]


def test_clients_and_workers_split_the_work() -> None:
    """A client's key cannot run jobs and a worker's key cannot create or cancel them."""
    client, worker = ROLE_PERMISSIONS[Role.CLIENT], ROLE_PERMISSIONS[Role.WORKER]
    assert client & {P.CLAIM, P.START, P.REPORT} == set()
    assert worker & {P.CREATE, P.CANCEL, P.RETRY, P.MANAGE_SCHEDULES} == set()
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize(("revoked_at", "revoked"), [(None, False), (datetime.now(UTC), True)])
def test_a_key_is_revoked_once_it_has_a_revocation_time(
    revoked_at: datetime | None, revoked: bool
) -> None:
    key = ApiKey(
        id=uuid4(),
        workspace_id=uuid4(),
        role=Role.WORKER,
        name=None,
        secret_hash="h",
        created_at=datetime(2024, 1, 1, tzinfo=UTC),
        revoked_at=revoked_at,
    )
    assert key.is_revoked is revoked
