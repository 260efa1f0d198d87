"""What a workspace sets for itself over what the instance sets for every workspace.

Retention: each value on its own, in the workspace's settings document; a value the
workspace leaves out is the instance's default (see `conveyor.domain.lifetime`), whatever
that becomes later. Weight: always the workspace's own (never inherited), its share of the
workers that serve several workspaces (see `conveyor.domain.capacity`); the store keeps it
in its own column, where claims read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from conveyor.domain.capacity import DEFAULT_WEIGHT, validate_weight
from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import JsonValue
from conveyor.domain.lifetime import (
    INHERIT,
    RETENTION_FIELDS,
    RETENTION_SETTINGS,
    Retention,
    validate_days,
)

WEIGHT_SETTING: Final = "weight"
SETTINGS: Final = frozenset({RETENTION_SETTINGS, WEIGHT_SETTING})
"""What a settings change may name."""


class SettingSource(StrEnum):
    """Where a value that applies to a workspace comes from."""

    WORKSPACE = "workspace"
    """The workspace set it."""
    INSTANCE = "instance"
    """The workspace left it to the instance's default."""


@dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    """What a workspace sets for itself. A retention key it leaves out follows the
    instance's default; a key set to None keeps those jobs forever. Settings this version
    does not know (written by a newer one) are kept as they are."""

    retention: Mapping[str, int | None] = field(default_factory=dict)
    others: Mapping[str, JsonValue] = field(default_factory=dict)
    weight: int = DEFAULT_WEIGHT

    @classmethod
    def from_stored(cls, document: JsonValue, *, weight: int) -> WorkspaceSettings:
        """From the stored JSON document (None: nothing set) and weight. Values that do
        not validate are ignored: a bad row must not stop the pruner or the settings page."""
        if not isinstance(document, dict):
            return cls(weight=weight)
        retention: dict[str, int | None] = {}
        stored = document.get(RETENTION_SETTINGS)
        if isinstance(stored, dict):
            for name in RETENTION_FIELDS.values():
                if name in stored:
                    try:
                        validate_days(stored[name], name)
                    except InvalidInput:
                        continue
                    retention[name] = stored[name]
        others = {key: value for key, value in document.items() if key != RETENTION_SETTINGS}
        return cls(retention, others, weight)

    def to_document(self) -> dict[str, JsonValue] | None:
        """The JSON document to store (the weight is not in it); None when nothing is set."""
        document: dict[str, JsonValue] = dict(self.others)
        if self.retention:
            document[RETENTION_SETTINGS] = dict(self.retention)
        return document or None

    def effective_retention(self, defaults: Retention) -> Retention:
        values = defaults.as_dict()
        values.update(self.retention)
        return Retention(**values)

    def retention_sources(self) -> dict[str, SettingSource]:
        """Where each retention value comes from: the workspace (its own) or the instance."""
        return {
            name: SettingSource.WORKSPACE if name in self.retention else SettingSource.INSTANCE
            for name in RETENTION_FIELDS.values()
        }

    def patched(self, patch: Mapping[str, JsonValue]) -> WorkspaceSettings:
        """These settings with a change applied: a partial object changes only what it
        names (`{"retention": {"failed_days": 60}}`, `{"weight": 3}`); a retention value
        of `"default"` drops the workspace's own value; a weight of None leaves it as it
        is. Raises InvalidInput, naming the field, for anything else."""
        unknown = sorted(set(patch) - SETTINGS)
        if unknown:
            raise InvalidInput(unknown[0], "is not a workspace setting")
        retention = dict(self.retention)
        changes = patch.get(RETENTION_SETTINGS, {})
        if not isinstance(changes, dict):
            raise InvalidInput(RETENTION_SETTINGS, "must be an object")
        for name, value in changes.items():
            where = f"{RETENTION_SETTINGS}.{name}"
            if name not in RETENTION_FIELDS.values():
                raise InvalidInput(where, "is not a retention setting")
            if value == INHERIT:
                retention.pop(name, None)
                continue
            validate_days(value, where)
            retention[name] = value
        weight = validate_weight(patch[WEIGHT_SETTING] if changes_weight(patch) else self.weight)
        return WorkspaceSettings(retention, self.others, weight)


def changes_weight(patch: Mapping[str, JsonValue]) -> bool:
    """Whether a settings change names a weight (which only an instance admin may
    change: `Permission.SET_WEIGHT`); None, as in other partial changes, names none."""
    return patch.get(WEIGHT_SETTING) is not None
