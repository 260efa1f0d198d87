"""What every route needs: the services, and who is calling with which rights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Path, Request

from conveyor.api.problems import Problem
from conveyor.config import Settings
from conveyor.domain.workspaces import Permission, Role
from conveyor.service.jobs import JobService
from conveyor.service.workspaces import Principal, WorkspaceService
from conveyor.store import Store

LOCAL_KEY_ID = UUID(int=0)


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    jobs: JobService
    workspaces: WorkspaceService


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.context
    return found


Context = Annotated[ApiContext, Depends(context)]
WorkspaceRef = Annotated[
    str, Path(description="the workspace's slug or id", min_length=1, max_length=63)
]


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
    )


def _workspace_not_found(reference: str) -> Problem:
    return Problem(404, "not-found", "Not found", f"workspace {reference} not found")


async def _caller(request: Request, ctx: ApiContext, reference: str) -> Principal:
    header = request.headers.get("authorization")
    if header is None:
        if ctx.settings.insecure_local:
            workspace = await ctx.store.workspaces.get_workspace(reference)
            if workspace is None:
                raise _workspace_not_found(reference)
            return Principal(LOCAL_KEY_ID, workspace, Role.ADMIN)
        raise _unauthorized("send an API key: Authorization: Bearer <key>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <key>'")
    principal = await ctx.workspaces.authenticate(token.strip())
    if principal is None:
        raise _unauthorized("the API key is not valid (unknown, malformed or revoked)")
    return principal


async def any_key(request: Request, ctx: Context) -> Principal:
    """The caller behind a valid key, whatever its workspace or role."""
    if ctx.settings.insecure_local and request.headers.get("authorization") is None:
        raise _unauthorized("this server runs without keys; name the workspace in the URL")
    return await _caller(request, ctx, "")


def authorized(permission: Permission) -> object:
    """A dependency: the caller's principal, if its key may do `permission` in the
    workspace named by the path. Another workspace answers 404 exactly as a missing one
    does, so a key never learns what exists outside its own workspace."""

    async def dependency(request: Request, ctx: Context, ws: WorkspaceRef) -> Principal:
        principal = await _caller(request, ctx, ws)
        if ws not in (principal.workspace.slug, str(principal.workspace.id)):
            raise _workspace_not_found(ws)
        if not principal.can(permission):
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"a {principal.role.value} key may not {permission.value.replace('_', ' ')}",
            )
        return principal

    return Depends(dependency)
