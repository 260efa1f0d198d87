"""Workspaces (tenants), API keys and what each role may do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from conveyor.domain.errors import InvalidInput

WORKSPACE_SLUG_PATTERN: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


def validate_workspace_slug(slug: str) -> None:
    if not WORKSPACE_SLUG_PATTERN.match(slug):
        raise InvalidInput(
            "name",
            "must be 1..63 characters of [a-z0-9-], starting and ending with a letter or digit",
        )


class Role(StrEnum):
    CLIENT = "client"
    WORKER = "worker"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    CREATE = "create"
    CANCEL = "cancel"
    RETRY = "retry"
    STREAM = "stream"
    CLAIM = "claim"
    REPORT = "report"
    MANAGE_KEYS = "manage_keys"
    MANAGE_SETTINGS = "manage_settings"


ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.CLIENT: frozenset(
        {Permission.READ, Permission.CREATE, Permission.CANCEL, Permission.RETRY, Permission.STREAM}
    ),
    Role.WORKER: frozenset(
        {Permission.READ, Permission.STREAM, Permission.CLAIM, Permission.REPORT}
    ),
    Role.ADMIN: frozenset(Permission),
}


def role_allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True, slots=True)
class Workspace:
    id: UUID
    slug: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    workspace_id: UUID
    role: Role
    name: str | None
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
