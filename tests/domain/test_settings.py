"""A workspace's own settings over the instance's: what applies, where each value comes
from, partial changes and the stored document — decisions without a database."""

from __future__ import annotations

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.lifetime import DEFAULT_RETENTION, Retention
from conveyor.domain.settings import WorkspaceSettings


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
    document = {"retention": {"completed_days": 3, "failed_days": None}, "weight": 4}
    settings = WorkspaceSettings.from_document(document)
    assert settings.retention == {"completed_days": 3, "failed_days": None}
    assert settings.to_document() == document
    assert WorkspaceSettings().to_document() is None
    # A value that does not validate (written by hand, say) is ignored, not fatal.
    odd = WorkspaceSettings.from_document({"retention": {"completed_days": "lots"}})
    assert odd.retention == {}
    assert WorkspaceSettings.from_document(None) == WorkspaceSettings()
