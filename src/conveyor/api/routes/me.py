"""Who a key is: its workspace and role (so a client needs only the key), and the
workspaces it may act in."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.responses import Response

from conveyor.api.dependencies import Context, any_key, forbidden
from conveyor.api.responses import json_response
from conveyor.domain.workspaces import Permission
from conveyor.service.workspaces import Caller, InstanceKey

router = APIRouter(prefix="/v1", tags=["keys"])


class WorkspaceOut(BaseModel):
    id: str
    slug: str


class MeOut(BaseModel):
    key_id: str
    role: str
    workspace: WorkspaceOut | None = Field(description="null for an instance key")
    instance: bool = Field(description="an instance key: it may act in every workspace")


class WorkspaceListOut(BaseModel):
    data: list[WorkspaceOut]


def caller_json(caller: Caller) -> dict[str, Any]:
    if isinstance(caller, InstanceKey):
        return {
            "key_id": caller.key_id,
            "role": caller.role.value,
            "workspace": None,
            "instance": True,
        }
    return {
        "key_id": caller.key_id,
        "role": caller.role.value,
        "workspace": {"id": caller.workspace.id, "slug": caller.workspace.slug},
        "instance": False,
    }


@router.get("/me", response_model=MeOut, summary="The calling key's workspace and role")
async def me(caller: Annotated[Caller, Depends(any_key)]) -> Response:
    return json_response(caller_json(caller))


@router.get(
    "/workspaces",
    response_model=WorkspaceListOut,
    summary="The workspaces the key may act in (an instance admin: every one)",
)
async def workspaces(ctx: Context, caller: Annotated[Caller, Depends(any_key)]) -> Response:
    if not isinstance(caller, InstanceKey):
        found = [caller.workspace]
    elif caller.can(Permission.READ):
        found = await ctx.workspaces.list_workspaces()
    else:
        raise forbidden(caller, Permission.READ)
    return json_response({"data": [{"id": w.id, "slug": w.slug} for w in found]})
