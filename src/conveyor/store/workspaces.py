"""Workspaces and API keys in the database."""

from __future__ import annotations

from uuid import UUID

from conveyor.domain.workspaces import ApiKey, Role, Workspace
from conveyor.store.connection import Database, Row

_KEY_COLUMNS = "id, workspace_id, role, name, secret_hash, created_at, revoked_at"


class WorkspaceStore:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect = database.dialect

    def _workspace(self, row: Row) -> Workspace:
        return Workspace(
            id=self.dialect.uuid(row["id"]),
            slug=row["slug"],
            created_at=self.dialect.timestamp(row["created_at"]),
        )

    def _key(self, row: Row) -> ApiKey:
        d = self.dialect
        return ApiKey(
            id=d.uuid(row["id"]),
            workspace_id=d.uuid(row["workspace_id"]),
            role=Role(row["role"]),
            name=row["name"],
            secret_hash=row["secret_hash"],
            created_at=d.timestamp(row["created_at"]),
            revoked_at=d.optional_timestamp(row["revoked_at"]),
        )

    def _joined_workspace(self, key: ApiKey, row: Row) -> Workspace:
        return Workspace(
            id=key.workspace_id,
            slug=row["slug"],
            created_at=self.dialect.timestamp(row["workspace_created_at"]),
        )

    async def insert_workspace(self, workspace_id: UUID, slug: str) -> Workspace | None:
        """None when the slug is taken."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                "INSERT INTO workspaces (id, slug, created_at) "
                f"VALUES (:id, :slug, {self.dialect.now}) "
                "ON CONFLICT (slug) DO NOTHING RETURNING id, slug, created_at",
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
                row = await connection.fetchrow(
                    "SELECT id, slug, created_at FROM workspaces WHERE id = :id", {"id": by_id}
                )
            else:
                row = await connection.fetchrow(
                    "SELECT id, slug, created_at FROM workspaces WHERE slug = :slug",
                    {"slug": reference},
                )
        return None if row is None else self._workspace(row)

    async def list_workspaces(self) -> list[Workspace]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                "SELECT id, slug, created_at FROM workspaces ORDER BY slug"
            )
        return [self._workspace(row) for row in rows]

    async def insert_key(
        self, key_id: UUID, workspace_id: UUID, role: Role, name: str | None, secret_hash: str
    ) -> ApiKey:
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                "INSERT INTO api_keys (id, workspace_id, role, name, secret_hash, created_at, "
                f"revoked_at) VALUES (:id, :ws, :role, :name, :hash, {self.dialect.now}, NULL) "
                f"RETURNING {_KEY_COLUMNS}",
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

    async def get_key_with_workspace(self, key_id: UUID) -> tuple[ApiKey, Workspace] | None:
        """A key and its workspace in one round trip (every authenticated request asks)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                "SELECT k.id, k.workspace_id, k.role, k.name, k.secret_hash, k.created_at, "
                "k.revoked_at, w.slug, w.created_at AS workspace_created_at "
                "FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = :id",
                {"id": key_id},
            )
        if row is None:
            return None
        key = self._key(row)
        return key, self._joined_workspace(key, row)

    async def list_keys(self, workspace_id: UUID) -> list[ApiKey]:
        async with self.database.read() as connection:
            rows = await connection.fetch(
                f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE workspace_id = :ws ORDER BY created_at",
                {"ws": workspace_id},
            )
        return [self._key(row) for row in rows]

    async def revoke_key(self, workspace_id: UUID, key_id: UUID) -> ApiKey | None:
        """Revoke a key of this workspace (again is a no-op); None if it has no such key."""
        async with self.database.write() as connection:
            row = await connection.fetchrow(
                f"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, {self.dialect.now}) "
                f"WHERE id = :id AND workspace_id = :ws RETURNING {_KEY_COLUMNS}",
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
                "INSERT INTO sessions (id, token_hash, key_id, csrf_token, created_at, "
                f"expires_at) VALUES (:id, :hash, :key_id, :csrf, {self.dialect.now}, "
                f"{self.dialect.now_plus('ttl')})",
                {
                    "id": session_id,
                    "hash": token_hash,
                    "key_id": key_id,
                    "csrf": csrf_token,
                    "ttl": ttl_seconds,
                },
            )

    async def get_session(self, token_hash: str) -> tuple[ApiKey, Workspace, str] | None:
        """The key, workspace and CSRF token of a live session (unexpired, key not revoked)."""
        async with self.database.read() as connection:
            row = await connection.fetchrow(
                "SELECT k.id, k.workspace_id, k.role, k.name, k.secret_hash, k.created_at, "
                "k.revoked_at, w.slug, w.created_at AS workspace_created_at, s.csrf_token "
                "FROM sessions s JOIN api_keys k ON k.id = s.key_id "
                "JOIN workspaces w ON w.id = k.workspace_id "
                f"WHERE s.token_hash = :hash AND s.expires_at > {self.dialect.now} "
                "AND k.revoked_at IS NULL",
                {"hash": token_hash},
            )
        if row is None:
            return None
        key = self._key(row)
        return key, self._joined_workspace(key, row), row["csrf_token"]

    async def delete_session(self, token_hash: str) -> None:
        async with self.database.write() as connection:
            await connection.execute(
                f"DELETE FROM sessions WHERE token_hash = :hash OR expires_at < {self.dialect.now}",
                {"hash": token_hash},
            )
