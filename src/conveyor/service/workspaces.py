"""Workspaces and API keys: creating them, and turning a presented key into a principal.

A key reads `cvk_<key id>_<secret>`: the prefix lets secret scanners recognise it, the id
finds the row, and only a salted SHA-256 of the secret is stored. Secrets carry 256 bits
of randomness, so a fast hash is enough; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from conveyor.domain.errors import AlreadyExists, InvalidInput, NotFound, WorkspaceNotFound
from conveyor.domain.events import key_actor
from conveyor.domain.workspaces import (
    ApiKey,
    Permission,
    Role,
    Workspace,
    role_allows,
    validate_workspace_slug,
)
from conveyor.ids import uuid7
from conveyor.store import Store

KEY_PREFIX: Final = "cvk_"
KEY_NAME_MAX_LENGTH: Final = 200
DEFAULT_WORKSPACE: Final = "default"


def format_key(key_id: UUID, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id.hex}_{secret}"


def parse_key(token: str) -> tuple[UUID, str] | None:
    if not token.startswith(KEY_PREFIX):
        return None
    key_hex, _, secret = token[len(KEY_PREFIX) :].partition("_")
    if len(key_hex) != 32 or not secret:
        return None
    try:
        return UUID(hex=key_hex), secret
    except ValueError:
        return None


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + secret.encode()).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def secret_matches(secret: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt_hex, _, digest = rest.partition("$")
    if scheme != "sha256":
        return False
    candidate = hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: one key, in one workspace, with one role."""

    key_id: UUID
    workspace: Workspace
    role: Role

    @property
    def actor(self) -> str:
        return key_actor(self.key_id)

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    token: str
    """The whole key, shown once: only its hash is stored."""


class WorkspaceService:
    def __init__(self, store: Store) -> None:
        self.workspaces = store.workspaces

    async def create_workspace(self, slug: str) -> Workspace:
        validate_workspace_slug(slug)
        workspace = await self.workspaces.insert_workspace(uuid7(), slug)
        if workspace is None:
            raise AlreadyExists("workspace", slug)
        return workspace

    async def get_workspace(self, reference: str) -> Workspace:
        workspace = await self.workspaces.get_workspace(reference)
        if workspace is None:
            raise WorkspaceNotFound(reference)
        return workspace

    async def list_workspaces(self) -> list[Workspace]:
        return await self.workspaces.list_workspaces()

    async def create_key(
        self, workspace_id: UUID, role: Role, name: str | None = None
    ) -> IssuedKey:
        if name is not None and not 0 < len(name) <= KEY_NAME_MAX_LENGTH:
            raise InvalidInput("name", f"must be 1..{KEY_NAME_MAX_LENGTH} characters")
        key_id = uuid7()
        secret = secrets.token_urlsafe(32)
        key = await self.workspaces.insert_key(
            key_id, workspace_id, role, name, hash_secret(secret)
        )
        return IssuedKey(key, format_key(key_id, secret))

    async def list_keys(self, workspace_id: UUID) -> list[ApiKey]:
        return await self.workspaces.list_keys(workspace_id)

    async def revoke_key(self, workspace_id: UUID, key_id: UUID) -> ApiKey:
        key = await self.workspaces.revoke_key(workspace_id, key_id)
        if key is None:
            raise NotFound("key", key_id)
        return key

    async def authenticate(self, token: str) -> Principal | None:
        """The principal a key stands for; None for a malformed, unknown, wrong or revoked
        key, all alike, so a caller learns nothing about which it was."""
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        key = await self.workspaces.get_key(key_id)
        if key is None or key.is_revoked or not secret_matches(secret, key.secret_hash):
            return None
        workspace = await self.workspaces.get_workspace(str(key.workspace_id))
        if workspace is None:
            return None
        return Principal(key.id, workspace, key.role)

    async def bootstrap(self) -> IssuedKey | None:
        """On a database with no workspace at all, create `default` and an admin key for it
        (returned once, for the quick start to hand to its user). Otherwise None."""
        if await self.workspaces.list_workspaces():
            return None
        try:
            workspace = await self.create_workspace(DEFAULT_WORKSPACE)
        except AlreadyExists:
            return None
        return await self.create_key(workspace.id, Role.ADMIN, "bootstrap admin")
