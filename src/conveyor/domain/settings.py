"""What a workspace sets for itself over what the instance sets for every workspace.

A workspace's settings are a JSON document of its own values: a retention value it leaves
out is the instance's default (see `conveyor.domain.lifetime`), whatever that becomes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import JsonValue
from conveyor.domain.lifetime import (
    INHERIT,
    RETENTION_FIELDS,
    RETENTION_SETTINGS,
    Retention,
    validate_days,
)


@dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    """What a workspace sets for itself. A retention key it leaves out follows the
    instance's default; a key set to None keeps those jobs forever. Settings this version
    does not know (written by a newer one) are kept as they are."""

    retention: Mapping[str, int | None] = field(default_factory=dict)
    others: Mapping[str, JsonValue] = field(default_factory=dict)

    @classmethod
    def from_document(cls, document: JsonValue) -> WorkspaceSettings:
        """From the stored JSON document (None: nothing set). Values that do not validate
        are ignored: a bad row must not stop the pruner or the settings page."""
        if not isinstance(document, dict):
            return cls()
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
        return cls(retention, others)

    def to_document(self) -> dict[str, JsonValue] | None:
        """The JSON document to store; None when nothing is set."""
        document: dict[str, JsonValue] = dict(self.others)
        if self.retention:
            document[RETENTION_SETTINGS] = dict(self.retention)
        return document or None

    def effective_retention(self, defaults: Retention) -> Retention:
        values = defaults.as_dict()
        values.update(self.retention)
        return Retention(**values)

    def retention_sources(self) -> dict[str, str]:
        """Where each retention value comes from: `workspace` (its own) or `instance`."""
        return {
            name: "workspace" if name in self.retention else "instance"
            for name in RETENTION_FIELDS.values()
        }

    def patched(self, patch: Mapping[str, JsonValue]) -> WorkspaceSettings:
        """These settings with a change applied: a partial object changes only what it
        names (`{"retention": {"failed_days": 60}}`); a value of `"default"` drops the
        workspace's own value. Raises InvalidInput, naming the field, for anything else."""
        unknown = sorted(set(patch) - {RETENTION_SETTINGS})
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
        return WorkspaceSettings(retention, self.others)
