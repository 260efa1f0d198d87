"""Admin routes: the workspace's own settings (retention) over the instance's defaults, and
its weight (which only an instance admin may change)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError
from starlette.responses import Response

from conveyor.api.dependencies import Context, authorized, forbidden
from conveyor.api.responses import json_response
from conveyor.api.schemas import ProblemOut, RetentionDays, Strict, Weight
from conveyor.domain.lifetime import INHERIT, MAX_RETENTION_DAYS
from conveyor.domain.settings import changes_weight
from conveyor.domain.workspaces import Permission
from conveyor.service.settings import WorkspaceSettingsService
from conveyor.service.workspaces import Principal

router = APIRouter(prefix="/v1/workspaces/{ws}/settings", tags=["settings"])
Admin = Annotated[Principal, authorized(Permission.MANAGE_SETTINGS)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemOut},
    403: {
        "model": ProblemOut,
        "description": "not an admin key; or the change names `weight`, which only an "
        "instance admin key may change (`permission`: `set_weight`)",
    },
    404: {"model": ProblemOut},
    422: {"model": ProblemOut},
}

DAYS_RULE = (
    f"must be a whole number of days from 0 to {MAX_RETENTION_DAYS}, null (keep forever) "
    f'or "{INHERIT}" (the instance\'s default)'
)
DAYS_HELP = (
    "days a job that ended so is kept; null keeps it forever, 0 deletes it as soon as the "
    f'pruner sees it, "{INHERIT}" takes the instance\'s default again'
)


def _days_or_the_rule(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    """One error naming the field and what it takes, not one per kind of value it could
    have been (`failed_days.constrained-int`, `failed_days.literal['default']`)."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("retention_days", DAYS_RULE) from None


Days = Annotated[
    RetentionDays | Literal["default"] | None,
    WrapValidator(_days_or_the_rule),
]


class RetentionIn(Strict):
    completed_days: Days = Field(None, description=DAYS_HELP)
    failed_days: Days = Field(None, description=DAYS_HELP)
    cancelled_days: Days = Field(None, description=DAYS_HELP)


WEIGHT_HELP = (
    "the workspace's share of workers that serve several workspaces: fair claims give it "
    "turns in proportion to it (a workspace's own, never inherited)"
)


class SettingsIn(Strict):
    retention: RetentionIn | None = Field(
        None, description="only the values named change; the others stay as they are"
    )
    weight: Weight | None = Field(
        None,
        description=f"{WEIGHT_HELP}; only an instance admin key may change it (null: "
        "unchanged, as when left out)",
    )


class RetentionOut(BaseModel):
    completed_days: int | None
    failed_days: int | None
    cancelled_days: int | None


class RetentionSourceOut(BaseModel):
    completed_days: Literal["workspace", "instance"]
    failed_days: Literal["workspace", "instance"]
    cancelled_days: Literal["workspace", "instance"]


class SourceOut(BaseModel):
    retention: RetentionSourceOut
    weight: Literal["workspace"]


class DefaultsOut(BaseModel):
    retention: RetentionOut


class SettingsOut(BaseModel):
    retention: RetentionOut = Field(description="what applies (null: kept forever)")
    weight: Weight = Field(description=WEIGHT_HELP)
    source: SourceOut = Field(description="each value's origin: the workspace's or the instance's")
    instance_defaults: DefaultsOut


def _service(ctx: Context) -> WorkspaceSettingsService:
    return WorkspaceSettingsService(ctx.store, ctx.settings.retention)


@router.get("", response_model=SettingsOut, responses=ERRORS, summary="The workspace's settings")
async def get_settings(ctx: Context, principal: Admin) -> Response:
    view = await _service(ctx).get(principal.workspace.id)
    return json_response(view.as_json())


@router.patch(
    "",
    response_model=SettingsOut,
    responses=ERRORS,
    summary="Change some of the workspace's settings",
    description='A partial object changes only what it names: `{"retention": '
    '{"failed_days": 60}}` leaves the other retention values and the weight as they were. '
    "Changing `weight` needs an instance admin key. A change is applied whole or not at "
    "all.",
)
async def change_settings(ctx: Context, principal: Admin, body: SettingsIn) -> Response:
    patch = body.model_dump(exclude_unset=True)
    if changes_weight(patch) and not principal.can(Permission.SET_WEIGHT):
        raise forbidden(principal, Permission.SET_WEIGHT)
    view = await _service(ctx).update(principal.workspace.id, patch)
    return json_response(view.as_json())
