"""A workspace's own settings over the instance's: what applies, where each value comes
from, partial changes and the stored document — decisions without a database."""

from __future__ import annotations

import pytest

from conveyor.domain.capacity import WEIGHT_MAX, WEIGHT_MIN
from conveyor.domain.errors import InvalidInput
from conveyor.domain.lifetime import DEFAULT_RETENTION, Retention
from conveyor.domain.settings import WorkspaceSettings, changes_weight


def test_a_workspace_inherits_what_it_does_not_set_and_null_keeps_forever() -> None:
    own = WorkspaceSettings(retention={"failed_days": None, "cancelled_days": 0})
    effective = own.effective_retention(DEFAULT_RETENTION)
    assert effective == Retention(completed_days=14, failed_days=None, cancelled_days=0)
    assert own.retention_sources() == {
        "completed_days": "instance",
        "failed_days": "workspace",
        "cancelled_days": "workspace",
    }
    # The instance's later default applies to what the workspace left to it.
    later = own.effective_retention(Retention(3, 3, 3))
    assert later == Retention(completed_days=3, failed_days=None, cancelled_days=0)


def test_a_partial_change_changes_only_what_it_names() -> None:
    own = WorkspaceSettings(retention={"completed_days": 7, "failed_days": 60})
    changed = own.patched({"retention": {"failed_days": None, "cancelled_days": 1}})
    assert changed.retention == {"completed_days": 7, "failed_days": None, "cancelled_days": 1}
    back = changed.patched({"retention": {"completed_days": "default"}})
    assert back.retention == {"failed_days": None, "cancelled_days": 1}
    assert changed.patched({}) == changed
    assert own.retention == {"completed_days": 7, "failed_days": 60}, "unchanged: immutable"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"retention": {"completed_days": -1}}, "retention.completed_days"),
        ({"retention": {"failed_days": 1.5}}, "retention.failed_days"),
        ({"retention": {"failed_days": True}}, "retention.failed_days"),
        ({"retention": {"failed_days": 36_501}}, "retention.failed_days"),
        ({"retention": {"forever_days": 1}}, "retention.forever_days"),
        ({"retention": 3}, "retention"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_change_names_its_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        WorkspaceSettings().patched(patch)
    assert refused.value.field == field


def test_settings_survive_the_round_trip_and_keep_what_a_newer_version_wrote() -> None:
    document = {"retention": {"completed_days": 3, "failed_days": None}, "colour": "blue"}
    settings = WorkspaceSettings.from_stored(document, weight=4)
    assert settings.retention == {"completed_days": 3, "failed_days": None}
    assert settings.weight == 4
    assert settings.to_document() == document, "the weight has a column of its own"
    assert WorkspaceSettings(weight=7).to_document() is None
    # A value that does not validate (written by hand, say) is ignored, not fatal.
    odd = WorkspaceSettings.from_stored({"retention": {"completed_days": "lots"}}, weight=1)
    assert odd.retention == {}
    assert WorkspaceSettings.from_stored(None, weight=2) == WorkspaceSettings(weight=2)


def test_the_weight_is_the_workspaces_own_and_changes_on_its_own() -> None:
    own = WorkspaceSettings(retention={"failed_days": 60}, weight=2)
    heavier = own.patched({"weight": 5})
    assert (heavier.weight, heavier.retention) == (5, {"failed_days": 60})
    both = own.patched({"weight": 1000, "retention": {"failed_days": "default"}})
    assert (both.weight, both.retention) == (1000, {})
    assert own.patched({"retention": {"completed_days": 1}}).weight == 2
    assert own.patched({"weight": None}) == own, "None: unchanged, as in any partial change"
    assert WorkspaceSettings().weight == 1, "the default weight"


@pytest.mark.parametrize("weight", [0, 1001, -3, 2.5, True, "3", [2]])
def test_a_weight_out_of_bounds_or_not_a_whole_number_is_refused(weight: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        WorkspaceSettings().patched({"weight": weight, "retention": {"failed_days": 1}})
    assert refused.value.field == "weight"
    for bound in (WEIGHT_MIN, WEIGHT_MAX):
        assert WorkspaceSettings().patched({"weight": bound}).weight == bound


def test_a_change_says_whether_it_names_the_weight() -> None:
    assert changes_weight({"weight": 3})
    assert changes_weight({"weight": 3, "retention": {}})
    assert not changes_weight({"retention": {"failed_days": 1}})
    assert not changes_weight({})
    assert not changes_weight({"weight": None})
