"""What every route needs: the services, who is calling with which rights, and a request
it understands (`understood_request`)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final
from uuid import UUID

from fastapi import Depends, Path, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from conveyor.api.limits import RateLimiter
from conveyor.api.problems import Problem, problem_for
from conveyor.api.readiness import Readiness
from conveyor.bus.hub import EventHub
from conveyor.config import Settings
from conveyor.domain.errors import WorkspaceNotFound
from conveyor.domain.workspaces import (
    INSTANCE_ONLY,
    Permission,
    Role,
    Workspace,
    permission_to_report,
)
from conveyor.metrics import Metrics
from conveyor.service.jobs import JobService
from conveyor.service.limits import LimitService
from conveyor.service.schedules import ScheduleService
from conveyor.service.stats import StatsService
from conveyor.service.workspaces import Caller, InstanceKey, Principal, WorkspaceService
from conveyor.store import Store

LOCAL_KEY_ID = UUID(int=0)


@dataclass
class ApiContext:
    settings: Settings
    store: Store
    jobs: JobService
    workspaces: WorkspaceService
    hub: EventHub
    stats: StatsService
    rate_limiter: RateLimiter
    readiness: Readiness
    metrics: Metrics
    limits: LimitService
    schedules: ScheduleService


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


def _names(reference: str, workspace: Workspace) -> bool:
    """Whether the path's workspace reference (its name, or its id in any case) is this one."""
    if reference == workspace.slug:
        return True
    try:
        return UUID(reference) == workspace.id
    except ValueError:
        return False


def _workspace_not_found(reference: str) -> Problem:
    return problem_for(WorkspaceNotFound(reference))


SESSION_COOKIE = "conveyor_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, the scheme in any case (RFC
    9110 §11.1); None for another scheme, or none. The API's keys and the metrics' token
    are read alike."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def _caller(request: Request, ctx: ApiContext, reference: str) -> Caller:
    header = request.headers.get("authorization")
    if header is not None:
        token = bearer_token(header)
        if token is None:
            raise _unauthorized("the Authorization header must be 'Bearer <key>'")
        principal = await ctx.workspaces.authenticate(token)
        if principal is None:
            raise _unauthorized("the API key is not valid (unknown, malformed or revoked)")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = await ctx.workspaces.session(cookie)
        if session is None:
            raise _unauthorized("the session has ended; sign in again")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            request.headers.get(CSRF_HEADER, ""), session.csrf_token
        ):
            raise Problem(
                403,
                "csrf",
                "Forbidden",
                f"a request made with the session cookie must carry the {CSRF_HEADER} header",
            )
        return session.principal
    if ctx.settings.insecure_local:
        workspace = await ctx.workspaces.find_workspace(reference)
        if workspace is None:
            raise _workspace_not_found(reference)
        return Principal(LOCAL_KEY_ID, workspace, Role.ADMIN)
    raise _unauthorized("send an API key (Authorization: Bearer <key>) or sign in")


async def caller_still_valid(request: Request, ctx: ApiContext, principal: Caller) -> bool:
    """Asked by long-lived streams at every ping: is the key (or session) they opened with
    still good? Answered from a cache at most a ping old, shared by all streams."""
    max_age = ctx.settings.sse_ping_seconds
    token = _presented_token(request)
    if token is not None:
        return await ctx.workspaces.still_valid(token, principal.key_id, max_age=max_age)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await ctx.workspaces.still_valid(
            cookie, principal.key_id, max_age=max_age, session=True
        )
    return ctx.settings.insecure_local and principal.key_id == LOCAL_KEY_ID


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


_AUTHENTICATING: set[object] = set()
"""The dependencies that say who calls (any_key, and each `authorized`): a route that
has one answers 401 to a caller without a valid key before anything else."""


async def any_key(request: Request, ctx: Context) -> Caller:
    """The caller behind a valid key or session, whatever its workspace or role."""
    if (
        ctx.settings.insecure_local
        and request.headers.get("authorization") is None
        and SESSION_COOKIE not in request.cookies
    ):
        raise _unauthorized("this server runs without keys; name the workspace in the URL")
    principal = await _caller(request, ctx, "")
    request.state.key_id = str(principal.key_id)  # for the access log
    return principal


_AUTHENTICATING.add(any_key)


async def in_workspace(ctx: ApiContext, caller: Caller, reference: str) -> Principal:
    """The caller acting in the workspace `reference` names: its own (another answers 404,
    exactly as a missing one does), or any, for an instance key."""
    if isinstance(caller, InstanceKey):
        workspace = await ctx.workspaces.find_workspace(reference)
        if workspace is None:
            raise _workspace_not_found(reference)
        return caller.in_workspace(workspace)
    if not _names(reference, caller.workspace):
        raise _workspace_not_found(reference)
    return caller


_REFUSALS: Final[Mapping[Permission, str]] = {
    Permission.REPORT_WITHOUT_LEASE: "reports only on the jobs it holds, with their lease_id "
    "(the one its claim answered)",
}
"""What a key does instead, where "may not <permission>" would not say it."""


def forbidden(caller: Caller, permission: Permission) -> Problem:
    """403, naming what the key may not do (`permission`: the code a client acts on)."""
    action = permission.value.replace("_", " ")
    instance = isinstance(caller, InstanceKey) or caller.instance
    if permission in INSTANCE_ONLY and not instance:
        detail = f"only an instance admin key may {action}, not a key of the workspace"
    else:
        refusal = _REFUSALS.get(permission, f"may not {action}")
        detail = f"{'an instance' if instance else 'a'} {caller.role.value} key {refusal}"
    return Problem(403, "forbidden", "Forbidden", detail, permission=permission.value)


def ensure_may_report(principal: Principal, lease_id: UUID | None) -> None:
    """Refuse (403) a report on a job that the key may not make with the lease it sent, or
    without one (`permission_to_report`): asked by every report route whose lease is
    optional, before anything is read or written."""
    for needed in (Permission.REPORT, permission_to_report(lease_id)):
        if not principal.can(needed):
            raise forbidden(principal, needed)


def authorized(permission: Permission | None) -> object:
    """A dependency: the caller's principal, if its key may do `permission` (None: the
    route checks) in the workspace named by the path. Another workspace answers 404
    exactly as a missing one does, so a key never learns what exists outside its own."""

    async def dependency(request: Request, ctx: Context, ws: WorkspaceRef) -> Principal:
        caller = await _caller(request, ctx, ws)
        request.state.key_id = str(caller.key_id)  # for the access log
        principal = await in_workspace(ctx, caller, ws)
        if permission is not None and not principal.can(permission):
            raise forbidden(caller, permission)
        return principal

    _AUTHENTICATING.add(dependency)
    return Depends(dependency)


# -- what a route cannot take ----------------------------------------------------------------


def _is_json(content_type: str | None) -> bool:
    """`application/json` or an `application/*+json`, with any parameters (charset): the
    media types the framework reads a body of as JSON (anything else, or none, it hands
    over as bytes, which a body model refuses as "not a valid dictionary")."""
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route declares, its dependencies' (the list filters) too."""
    names = {field.alias for field in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return names


def _authenticates(dependant: Dependant) -> bool:
    return dependant.call in _AUTHENTICATING or any(
        _authenticates(dependency) for dependency in dependant.dependencies
    )


def _unknown_query(request: Request, route: APIRoute) -> RequestValidationError | None:
    """A query parameter the route does not take would be ignored: a misspelt or future
    filter (`flow_id`) would answer every job as if it matched. Refused instead, as an
    unknown field of a body is."""
    if not request.query_params:
        return None
    declared = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in declared]
    if not unknown:
        return None
    takes = ", ".join(sorted(declared)) or "none"
    return RequestValidationError(
        [
            {
                "type": "unknown_query_parameter",
                "loc": ("query", name),
                "msg": f"unknown query parameter; this route takes {takes}",
                "input": request.query_params.get(name),
            }
            for name in unknown
        ]
    )


async def _unreadable_body(request: Request, route: APIRoute) -> Problem | None:
    """A body sent as anything but JSON, to a route that reads one."""
    content_type = request.headers.get("content-type")
    if route.body_field is None or _is_json(content_type) or not await request.body():
        return None
    return Problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        "the request body must be JSON, sent with Content-Type: application/json"
        + (f" (not {content_type})" if content_type else ""),
    )


async def understood_request(request: Request) -> None:
    """A dependency of every API route: refuses what the route would misread rather than
    answer as if it had been asked something else. A body sent as anything but JSON is 415
    (not a 422 saying the body is no object); a query parameter the route does not
    declare is 422 naming it. Either comes after the caller's key is checked, as any other
    refusal of the route does: a caller without a valid key hears 401, nothing of the
    route's shape."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    refusal: Exception | None = _unknown_query(request, route) or await _unreadable_body(
        request, route
    )
    if refusal is None:
        return
    ctx = context(request)
    if _authenticates(route.dependant) and not ctx.settings.insecure_local:
        await _caller(request, ctx, request.path_params.get("ws", ""))  # raises 401
    raise refusal
