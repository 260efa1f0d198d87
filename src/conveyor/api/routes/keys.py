"""Admin routes: the workspace's API keys."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized
from conveyor.api.responses import json_response
from conveyor.api.schemas import ProblemOut, SafeText, Strict
from conveyor.domain.workspaces import ApiKey, Permission, Role
from conveyor.service.workspaces import KEY_NAME_MAX_LENGTH, Principal

router = APIRouter(prefix="/v1/workspaces/{ws}/keys", tags=["keys"])
Admin = Annotated[Principal, authorized(Permission.MANAGE_KEYS)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut},
    403: {"model": ProblemOut},
    404: {"model": ProblemOut},
    422: {"model": ProblemOut},
}


class CreateKeyIn(Strict):
    role: Role
    name: Annotated[str, SafeText(1, KEY_NAME_MAX_LENGTH)] | None = None


class KeyOut(BaseModel):
    id: UUID
    role: Role
    name: str | None
    created_at: str
    revoked_at: str | None


class IssuedKeyOut(KeyOut):
    token: str = Field(description="the whole key; shown this once, never stored")


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "role": key.role.value,
        "name": key.name,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@router.get("", response_model=list[KeyOut], responses=ERRORS, summary="List API keys")
async def list_keys(ctx: Context, principal: Admin) -> Response:
    keys = await ctx.workspaces.list_keys(principal.workspace.id)
    return json_response([key_json(key) for key in keys])


@router.post(
    "", status_code=201, response_model=IssuedKeyOut, responses=ERRORS, summary="Create a key"
)
async def create_key(ctx: Context, principal: Admin, body: CreateKeyIn) -> Response:
    issued = await ctx.workspaces.create_key(principal.workspace.id, body.role, body.name)
    return json_response({**key_json(issued.key), "token": issued.token}, 201)


@router.delete(
    "/{key_id}",
    response_model=KeyOut,
    responses=ERRORS,
    summary="Revoke a key (refused from the next request on)",
)
async def revoke_key(ctx: Context, principal: Admin, key_id: UUID) -> Response:
    key = await ctx.workspaces.revoke_key(principal.workspace.id, key_id)
    return json_response(key_json(key))
