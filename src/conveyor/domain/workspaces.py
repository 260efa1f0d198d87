"""Workspaces (tenants), API keys and what each role may do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final
from uuid import UUID

from conveyor.domain.capacity import DEFAULT_WEIGHT
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
    START = "start"
    """Start a job by its id (`PATCH …/status` to RUNNING), not by a claim: a job the key's
    worker does not hold yet, which it then reads."""
    REPORT = "report"
    """Report on a job it holds, with the job's lease (progress, steps, events, a heartbeat,
    the outcome)."""
    REPORT_WITHOUT_LEASE = "report_without_lease"
    """Report progress, steps and events on a job nobody holds yet (PENDING or QUEUED), with
    no lease: the job's own workspace preparing it. A key that serves every workspace does
    not have it (`permission_to_report`)."""
    MANAGE_KEYS = "manage_keys"
    MANAGE_LIMITS = "manage_limits"
    MANAGE_SCHEDULES = "manage_schedules"
    MANAGE_SETTINGS = "manage_settings"
    SET_WEIGHT = "set_weight"
    """Change a workspace's weight: its share of the workers that serve several workspaces,
    taken from the others, so no workspace's own key may raise it (INSTANCE_ONLY)."""


INSTANCE_ONLY: Final = frozenset({Permission.SET_WEIGHT})
"""What only a key bound to no workspace may do: what weighs one workspace against others."""


ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.CLIENT: frozenset(
        {
            Permission.READ,
            Permission.CREATE,
            Permission.CANCEL,
            Permission.RETRY,
            Permission.STREAM,
            Permission.MANAGE_SCHEDULES,
        }
    ),
    Role.WORKER: frozenset(
        {
            Permission.READ,
            Permission.STREAM,
            Permission.CLAIM,
            Permission.START,
            Permission.REPORT,
            Permission.REPORT_WITHOUT_LEASE,
        }
    ),
    Role.ADMIN: frozenset(Permission) - INSTANCE_ONLY,
}


INSTANCE_ROLE_PERMISSIONS: Final[Mapping[Role, frozenset[Permission]]] = {
    # An instance worker claims from every workspace and reports on the jobs it holds, with
    # their lease: nothing else (it cannot create, list, read, start by id or cancel jobs,
    # report on a job it does not hold, nor manage keys).
    Role.WORKER: frozenset({Permission.CLAIM, Permission.REPORT}),
    Role.ADMIN: frozenset(Permission),
}
"""What a key bound to no workspace may do, in every workspace."""


def role_allows(role: Role, permission: Permission, *, instance: bool = False) -> bool:
    allowed = INSTANCE_ROLE_PERMISSIONS if instance else ROLE_PERMISSIONS
    return permission in allowed.get(role, frozenset())


def permission_to_report(lease_id: UUID | None) -> Permission:
    """What a report on a job asks of the key, besides the route's own REPORT. With a lease,
    nothing more: the lease checks (`conveyor.domain.jobs.ensure_lease`) then prove the key's
    worker holds the job. Without one, REPORT_WITHOUT_LEASE: a report that would otherwise
    be accepted on any PENDING or QUEUED job whose id the key names, and answered with it."""
    return Permission.REPORT if lease_id is not None else Permission.REPORT_WITHOUT_LEASE


def validate_instance_role(role: Role) -> None:
    if role not in INSTANCE_ROLE_PERMISSIONS:
        raise InvalidInput("role", "an instance key is a worker or an admin key")


@dataclass(frozen=True, slots=True)
class Workspace:
    id: UUID
    slug: str
    created_at: datetime
    weight: int = DEFAULT_WEIGHT
    """Its share of a pool of workers serving several workspaces."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    workspace_id: UUID | None
    """None: an instance key, bound to no workspace."""
    role: Role
    name: str | None
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
