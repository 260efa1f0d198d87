"""Workspaces and API keys in the database."""

from __future__ import annotations

from uuid import UUID

from conveyor.domain.workspaces import ApiKey, Role, Workspace
from conveyor.store.connection import Database, Row
from conveyor.store.queries import queries_for


class WorkspaceStore:
    """The same code on both databases, with each one's queries (all in shared.sql)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.codec = database.codec
        self.queries = queries_for(database.dialect)

    def _workspace(self, row: Row) -> Workspace:
        return Workspace(
            id=self.codec.uuid(row["id"]),
            slug=row["slug"],
            created_at=self.codec.timestamp(row["created_at"]),
            weight=int(row["weight"]),
        )

    def _key(self, row: Row) -> ApiKey:
        d = self.codec
        return ApiKey(
            id=d.uuid(row["id"]),
            workspace_id=d.optional_uuid(row["workspace_id"]),
            role=Role(row["role"]),
            name=row["name"],
            secret_hash=row["secret_hash"],
            created_at=d.timestamp(row["created_at"]),
            revoked_at=d.optional_timestamp(row["revoked_at"]),
        )

    def _joined_workspace(self, key: ApiKey, row: Row) -> Workspace | None:
        if key.workspace_id is None:
            return None  # an instance key
        return Workspace(
            id=key.workspace_id,
            slug=row["slug"],
            created_at=self.codec.timestamp(row["workspace_created_at"]),
            weight=int(row["workspace_weight"]),
        )

    async def insert_workspace(self, workspace_id: UUID, slug: str) -> Workspace | None:
        """None when the slug is taken."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["insert_workspace"].sql,
                {"id": workspace_id, "slug": slug},
            )
        return None if row is None else self._workspace(row)

    async def get_workspace(self, reference: str) -> Workspace | None:
        """By slug, or by id when `reference` is a UUID."""
        try:
            by_id: UUID | None = UUID(reference)
        except ValueError:
            by_id = None
        async with self.database.read() as connection:
            if by_id is not None:
                row = await connection.fetchrow(self.queries["workspace_by_id"].sql, {"id": by_id})
            else:
                row = await connection.fetchrow(
                    self.queries["workspace_by_slug"].sql,
                    {"slug": reference},
                )
        return None if row is None else self._workspace(row)

    async def list_workspaces(self) -> list[Workspace]:
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["list_workspaces"].sql)
        return [self._workspace(row) for row in rows]

    async def insert_key(
        self,
        key_id: UUID,
        workspace_id: UUID | None,
        role: Role,
        name: str | None,
        secret_hash: str,
    ) -> ApiKey:
        """A key of a workspace, or (`workspace_id` None) an instance key."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["insert_key"].sql,
                {
                    "id": key_id,
                    "ws": workspace_id,
                    "role": role.value,
                    "name": name,
                    "hash": secret_hash,
                },
            )
        assert row is not None
        return self._key(row)

    async def get_key_with_workspace(self, key_id: UUID) -> tuple[ApiKey, Workspace | None] | None:
        """A key and its workspace in one round trip (every authenticated request asks)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["key_with_workspace"].sql,
                {"id": key_id},
            )
        if row is None:
            return None
        key = self._key(row)
        return key, self._joined_workspace(key, row)

    async def list_keys(self, workspace_id: UUID) -> list[ApiKey]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                self.queries["list_keys"].sql,
                {"ws": workspace_id},
            )
        return [self._key(row) for row in rows]

    async def list_instance_keys(self) -> list[ApiKey]:
        async with self.database.read() as connection:
            rows = await connection.fetch(self.queries["list_instance_keys"].sql)
        return [self._key(row) for row in rows]

    async def revoke_instance_key(self, key_id: UUID) -> ApiKey | None:
        async with self.database.write() as connection:
            row = await connection.fetchrow(self.queries["revoke_instance_key"].sql, {"id": key_id})
        return None if row is None else self._key(row)

    async def revoke_key(self, workspace_id: UUID, key_id: UUID) -> ApiKey | None:
        """Revoke a key of this workspace (again is a no-op); None if it has no such key."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                self.queries["revoke_key"].sql,
                {"id": key_id, "ws": workspace_id},
            )
        return None if row is None else self._key(row)

    async def insert_session(
        self,
        session_id: UUID,
        token_hash: str,
        key_id: UUID,
        csrf_token: str,
        ttl_seconds: float,
    ) -> None:
        async with self.database.write() as connection:
            await connection.execute(
                self.queries["insert_session"].sql,
                {
                    "id": session_id,
                    "hash": token_hash,
                    "key_id": key_id,
                    "csrf": csrf_token,
                    "ttl": ttl_seconds,
                },
            )

    async def get_session(self, token_hash: str) -> tuple[ApiKey, Workspace | None, str] | None:
        """The key, workspace and CSRF token of a live session (unexpired, key not revoked)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                self.queries["live_session"].sql,
                {"hash": token_hash},
            )
        if row is None:
            return None
        key = self._key(row)
        return key, self._joined_workspace(key, row), row["csrf_token"]

    async def delete_session(self, token_hash: str) -> None:
        async with self.database.write() as connection:
            await connection.execute(
                self.queries["delete_session"].sql,
                {"hash": token_hash},
            )
