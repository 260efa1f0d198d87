"""Workspaces and API keys: creating them, and turning a presented key into a principal.

A key reads `cvk_<key id>_<secret>`: the prefix lets secret scanners recognise it, the id
finds the row, and only a salted SHA-256 of the secret is stored. Secrets carry 256 bits
of randomness, so a fast hash is enough; the comparison is constant-time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from conveyor.domain.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    Resource,
    WorkspaceNotFound,
)
from conveyor.domain.events import key_actor
from conveyor.domain.workspaces import (
    WORKSPACE_SLUG_PATTERN,
    ApiKey,
    Permission,
    Role,
    Workspace,
    role_allows,
    validate_instance_role,
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
    """Who is calling, where: one key, acting in one workspace (its own, or, for an
    instance key, the one it names), with one role."""

    key_id: UUID
    workspace: Workspace
    role: Role
    instance: bool = False
    """An instance key, bound to no workspace (its rights: INSTANCE_ROLE_PERMISSIONS)."""

    @property
    def actor(self) -> str:
        return key_actor(self.key_id)

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission, instance=self.instance)


@dataclass(frozen=True, slots=True)
class InstanceKey:
    """A key bound to no workspace: it acts in whichever workspace a request names."""

    key_id: UUID
    role: Role

    @property
    def actor(self) -> str:
        return key_actor(self.key_id)

    def can(self, permission: Permission) -> bool:
        return role_allows(self.role, permission, instance=True)

    def in_workspace(self, workspace: Workspace) -> Principal:
        return Principal(self.key_id, workspace, self.role, instance=True)


Caller = Principal | InstanceKey
"""Who presented a valid key or session, before a request's workspace is known."""


@dataclass(frozen=True, slots=True)
class Session:
    principal: Caller
    csrf_token: str
    """Sent back in X-CSRF-Token on every state-changing request made with the cookie."""


def _caller(key: ApiKey, workspace: Workspace | None) -> Caller:
    if workspace is None:
        return InstanceKey(key.id, key.role)
    return Principal(key.id, workspace, key.role)


def _digest(session_token: str) -> str:
    return hashlib.sha256(session_token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    token: str
    """The whole key, shown once: only its hash is stored."""


class WorkspaceService:
    def __init__(self, store: Store, *, cache_seconds: float = 0.0) -> None:
        self.workspaces = store.workspaces
        self._validity: dict[str, tuple[bool, float]] = {}
        self._checking: dict[str, asyncio.Future[Caller | None]] = {}
        self._cache_seconds = cache_seconds
        self._principals: dict[str, tuple[Caller, float]] = {}
        self._generation = 0

    async def create_workspace(self, slug: str) -> Workspace:
        validate_workspace_slug(slug)
        workspace = await self.workspaces.insert_workspace(uuid7(), slug)
        if workspace is None:
            raise AlreadyExists(Resource.WORKSPACE, slug)
        return workspace

    async def find_workspace(self, reference: str) -> Workspace | None:
        """By name or id; None when there is none (or the reference could name none)."""
        if not WORKSPACE_SLUG_PATTERN.match(reference):
            try:
                reference = str(UUID(reference))
            except ValueError:
                return None
        return await self.workspaces.get_workspace(reference)

    async def get_workspace(self, reference: str) -> Workspace:
        workspace = await self.workspaces.get_workspace(reference)
        if workspace is None:
            raise WorkspaceNotFound(reference)
        return workspace

    async def list_workspaces(self) -> list[Workspace]:
        return await self.workspaces.list_workspaces()

    async def create_key(
        self, workspace_id: UUID | None, role: Role, name: str | None = None
    ) -> IssuedKey:
        """A key of a workspace, or with `workspace_id` None an instance key (a worker or
        an admin of every workspace)."""
        if workspace_id is None:
            validate_instance_role(role)
        if name is not None and not 0 < len(name) <= KEY_NAME_MAX_LENGTH:
            raise InvalidInput("name", f"must be 1..{KEY_NAME_MAX_LENGTH} characters")
        key_id = uuid7()
        secret = secrets.token_urlsafe(32)
        key = await self.workspaces.insert_key(
            key_id, workspace_id, role, name, hash_secret(secret)
        )
        return IssuedKey(key, format_key(key_id, secret))

    async def list_instance_keys(self) -> list[ApiKey]:
        return await self.workspaces.list_instance_keys()

    async def revoke_instance_key(self, key_id: UUID) -> ApiKey:
        key = await self.workspaces.revoke_instance_key(key_id)
        if key is None:
            raise NotFound(Resource.INSTANCE_KEY, key_id)
        self.forget_key(key_id)
        return key

    async def list_keys(self, workspace_id: UUID) -> list[ApiKey]:
        return await self.workspaces.list_keys(workspace_id)

    async def revoke_key(self, workspace_id: UUID, key_id: UUID) -> ApiKey:
        key = await self.workspaces.revoke_key(workspace_id, key_id)
        if key is None:
            raise NotFound(Resource.KEY, key_id)
        self.forget_key(key_id)
        return key

    async def authenticate(self, token: str) -> Caller | None:
        """The principal a key stands for; None for a malformed, unknown, wrong or revoked
        key, all alike, so a caller learns nothing about which it was.

        With `cache_seconds` (PostgreSQL servers), a valid key is remembered that long,
        and forgotten at once when the database announces a change to it (`forget_key`):
        a revoked key is refused from the next request that reaches any server after the
        announcement. Without it, every request asks the database."""
        if self._cache_seconds:
            cached = self._principals.get(token)
            if cached is not None and time.monotonic() < cached[1]:
                return cached[0]
        generation = self._generation
        principal = await self._authenticate_uncached(token)
        # An answer read before a change was announced may predate it: not worth keeping.
        if principal is not None and self._cache_seconds and generation == self._generation:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[token] = (principal, time.monotonic() + self._cache_seconds)
        return principal

    def forget_key(self, key_id: UUID | None = None) -> None:
        """A key changed (or, with None, anything may have): drop what is cached about it,
        and whatever is being read right now."""
        self._generation += 1
        if key_id is None:
            self._principals.clear()
        else:
            for token in [t for t, (p, _) in self._principals.items() if p.key_id == key_id]:
                del self._principals[token]
        self._validity.clear()

    async def _authenticate_uncached(self, token: str) -> Caller | None:
        parsed = parse_key(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        found = await self.workspaces.get_key_with_workspace(key_id)
        if found is None:
            return None
        key, workspace = found
        if key.is_revoked or not secret_matches(secret, key.secret_hash):
            return None
        return _caller(key, workspace)

    async def still_valid(
        self, token: str, key_id: UUID, *, max_age: float, session: bool = False
    ) -> bool:
        """For long-lived streams re-checking their key now and then: the answer may be up
        to `max_age` seconds old, so a thousand open streams cost one query, not a
        thousand. A revoked key's streams therefore end within ping + max_age seconds."""
        now = time.monotonic()
        cached = self._validity.get(token)
        if cached is not None and now - cached[1] < max_age:
            return cached[0]
        in_flight = self._checking.get(token)
        if in_flight is not None:  # many streams, one key: one query answers them all
            answer = await asyncio.shield(in_flight)
            return answer is not None and answer.key_id == key_id
        generation = self._generation
        check = asyncio.ensure_future(
            self._session_principal(token) if session else self.authenticate(token)
        )
        self._checking[token] = check
        try:
            principal = await asyncio.shield(check)
        finally:
            self._checking.pop(token, None)
        valid = principal is not None and principal.key_id == key_id
        if len(self._validity) > 10_000:
            self._validity.clear()
        if generation == self._generation:
            # Stamped when the answer came, so a slow query does not hand out a stale one.
            self._validity[token] = (valid, time.monotonic())
        return valid

    async def _session_principal(self, session_token: str) -> Caller | None:
        found = await self.session(session_token)
        return None if found is None else found.principal

    # -- dashboard sessions ----------------------------------------------------------------

    async def start_session(self, token: str, ttl_seconds: float) -> tuple[str, Session]:
        """Trade an API key for a session token (the browser keeps it in an HttpOnly
        cookie; only its hash is stored). None-like failures raise NotFound."""
        principal = await self.authenticate(token)
        if principal is None:
            raise NotFound(Resource.KEY, "presented")
        session_token = secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        await self.workspaces.insert_session(
            uuid7(), _digest(session_token), principal.key_id, csrf_token, ttl_seconds
        )
        return session_token, Session(principal, csrf_token)

    async def session(self, session_token: str) -> Session | None:
        found = await self.workspaces.get_session(_digest(session_token))
        if found is None:
            return None
        key, workspace, csrf_token = found
        return Session(_caller(key, workspace), csrf_token)

    async def end_session(self, session_token: str) -> None:
        await self.workspaces.delete_session(_digest(session_token))
        self.forget_key()

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
