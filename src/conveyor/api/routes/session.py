"""Dashboard sign-in: trade an API key for an HttpOnly, SameSite=Strict session cookie.

A browser's EventSource cannot send an Authorization header, so the cookie is what lets
the dashboard follow streams. Requests that change state with the cookie must also send
the session's CSRF token in X-CSRF-Token. The key itself never goes in a URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from conveyor.api.dependencies import SESSION_COOKIE, Context, any_key
from conveyor.api.problems import Problem
from conveyor.api.responses import json_response
from conveyor.api.routes.me import caller_json
from conveyor.api.schemas import ProblemOut, SafeText, Strict
from conveyor.domain.errors import NotFound
from conveyor.service.workspaces import Caller, Session

router = APIRouter(prefix="/v1/session", tags=["session"])


class SignInIn(Strict):
    api_key: Annotated[str, SafeText(1, 200)]


class SessionOut(BaseModel):
    key_id: str
    role: str
    workspace: dict[str, str] | None = Field(description="null for an instance key")
    instance: bool = Field(description="an instance key: it may act in every workspace")
    csrf_token: str


def _body(session: Session) -> dict[str, object]:
    return {**caller_json(session.principal), "csrf_token": session.csrf_token}


@router.post(
    "",
    response_model=SessionOut,
    responses={401: {"model": ProblemOut}},
    summary="Sign in with an API key; sets the session cookie",
)
async def sign_in(ctx: Context, body: SignInIn, request: Request) -> Response:
    try:
        token, session = await ctx.workspaces.start_session(
            body.api_key, ctx.settings.session_ttl_seconds
        )
    except NotFound:
        raise Problem(401, "unauthorized", "Unauthorized", "that API key is not valid") from None
    response = json_response(_body(session))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(ctx.settings.session_ttl_seconds),
        httponly=True,
        samesite="strict",
        secure=ctx.settings.cookie_secure or request.url.scheme == "https",
        path="/",
    )
    return response


@router.get(
    "",
    response_model=SessionOut,
    responses={401: {"model": ProblemOut}},
    summary="The signed-in session (with its CSRF token)",
)
async def current(ctx: Context, request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await ctx.workspaces.session(cookie) if cookie else None
    if session is None:
        raise Problem(401, "unauthorized", "Unauthorized", "not signed in")
    return json_response(_body(session))


@router.delete("", status_code=204, summary="Sign out")
async def sign_out(
    ctx: Context, request: Request, _: Annotated[Caller, Depends(any_key)]
) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await ctx.workspaces.end_session(cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
