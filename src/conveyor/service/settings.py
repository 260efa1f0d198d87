"""A workspace's settings: what it sets for itself over the instance's defaults, and its
weight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from conveyor.domain.errors import WorkspaceNotFound
from conveyor.domain.events import JsonValue
from conveyor.domain.lifetime import RETENTION_SETTINGS, Retention
from conveyor.domain.settings import WEIGHT_SETTING, SettingSource, WorkspaceSettings
from conveyor.store import Store


@dataclass(frozen=True, slots=True)
class SettingsView:
    """A workspace's settings as they apply: each value, and whether it is the
    workspace's own or the instance's default."""

    own: WorkspaceSettings
    defaults: Retention

    @property
    def retention(self) -> Retention:
        return self.own.effective_retention(self.defaults)

    def as_json(self) -> dict[str, Any]:
        return {
            RETENTION_SETTINGS: self.retention.as_dict(),
            WEIGHT_SETTING: self.own.weight,
            "source": {
                RETENTION_SETTINGS: self.own.retention_sources(),
                WEIGHT_SETTING: SettingSource.WORKSPACE,  # never inherited
            },
            "instance_defaults": {RETENTION_SETTINGS: self.defaults.as_dict()},
        }


class WorkspaceSettingsService:
    def __init__(self, store: Store, defaults: Retention) -> None:
        self.lifetime = store.lifetime
        self.defaults = defaults

    async def get(self, workspace_id: UUID) -> SettingsView:
        own = await self.lifetime.settings(workspace_id)
        if own is None:
            raise WorkspaceNotFound(str(workspace_id))
        return SettingsView(own, self.defaults)

    async def update(self, workspace_id: UUID, patch: Mapping[str, JsonValue]) -> SettingsView:
        """Change what `patch` names (`{"retention": {"failed_days": 60}, "weight": 3}`),
        nothing else; the whole change is checked before anything is stored, and stored in
        one statement. Who may change the weight is the caller's to check
        (`changes_weight`): the command line may, a workspace's own key may not."""
        WorkspaceSettings().patched(patch)  # refuse a bad change before taking any lock
        own = await self.lifetime.change_settings(
            workspace_id, lambda settings: settings.patched(patch)
        )
        if own is None:
            raise WorkspaceNotFound(str(workspace_id))
        return SettingsView(own, self.defaults)
