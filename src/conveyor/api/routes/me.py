"""Who a key is: its workspace and role (so a client needs only the key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.responses import Response

from conveyor.api.dependencies import any_key
from conveyor.api.responses import json_response
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1", tags=["keys"])


class WorkspaceOut(BaseModel):
    id: str
    slug: str


class MeOut(BaseModel):
    key_id: str
    role: str
    workspace: WorkspaceOut


@router.get("/me", response_model=MeOut, summary="The calling key's workspace and role")
async def me(principal: Annotated[Principal, Depends(any_key)]) -> Response:
    return json_response(
        {
            "key_id": principal.key_id,
            "role": principal.role.value,
            "workspace": {"id": principal.workspace.id, "slug": principal.workspace.slug},
        }
    )
