"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the service raises maps to one problem type here, and nowhere else; a 500
says only that something went wrong (the log has the rest, once, with its traceback).

No error closes a connection that could go on: an unexpected one is answered here, by
`UnexpectedErrors`, rather than left to the framework (Starlette sends its 500 and then
raises again, and the server closes the connection, so a client reusing it gets a reset).
Only a response already under way, which cannot be taken back, is cut off.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.connections import ResponseWatch, abort_connection
from conveyor.domain.errors import (
    AlreadyExists,
    BatchIdempotencyConflict,
    ConcurrentUpdate,
    ConveyorError,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    JobConflict,
    LeaseLost,
    LimitConflict,
    NotFound,
    ProgressRegressed,
    ResultConflict,
    ScheduleConflict,
    StartsOnlyByClaim,
    StepConflict,
    StorageFull,
    StorageReadOnly,
    StorageUnavailable,
    StreamPositionGone,
    TransientDatabaseError,
    Unavailable,
)
from conveyor.serialization import dumps

log = logging.getLogger("conveyor.api")

PROBLEM_JSON = "application/problem+json"
STORAGE_RETRY_AFTER_SECONDS = 10
"""What a client is told to wait when the database cannot store anything: long enough not
to hammer a server whose operator must act, short enough to notice when they have."""


class Problem(Exception):
    """An error the API raises itself (auth, limits), already in problem form."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    kind: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {"type": f"/problems/{kind}", "title": title, "status": status, "detail": detail}
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(error: Exception) -> Problem:
    """The problem a service error stands for."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, NotFound):
        return Problem(404, "not-found", "Not found", str(error), resource=error.resource.value)
    if isinstance(error, InvalidInput):
        return Problem(
            422,
            "validation-error",
            "Invalid input",
            f"{error.field}: {error.message}",
            errors=[{"field": error.field, "message": error.message}],
        )
    if isinstance(error, AlreadyExists):
        return Problem(409, "already-exists", "Already exists", str(error))
    if isinstance(error, IdempotencyConflict | BatchIdempotencyConflict):
        # Within a batch no job holds the key yet: the detail names the jobs by their place.
        held_by: dict[str, Any] = {}
        if isinstance(error, IdempotencyConflict):
            held_by["job_id"] = str(error.job_id)
        return Problem(409, "idempotency-conflict", "Idempotency key reused", str(error), **held_by)
    if isinstance(error, JobConflict):
        extra: dict[str, Any] = {
            "job_id": str(error.job_id),
            "current_version": error.current_version,
        }
        if isinstance(error, LeaseLost):
            return Problem(
                409, "lease-lost", "Lease lost", str(error), reason=error.reason, **extra
            )
        if isinstance(error, InvalidTransition):
            return Problem(
                409,
                "invalid-transition",
                "Invalid transition",
                str(error),
                from_status=error.source,
                to_status=error.target,
                **extra,
            )
        if isinstance(error, StartsOnlyByClaim):
            return Problem(
                409,
                "starts-only-by-claim",
                "Governed by a limit",
                str(error),
                limits=list(error.limits),
                **extra,
            )
        if isinstance(error, ConcurrentUpdate):
            return Problem(409, "concurrent-update", "Concurrent update", str(error), **extra)
        if isinstance(error, ResultConflict):
            return Problem(409, "result-conflict", "Different result", str(error), **extra)
        if isinstance(error, ProgressRegressed):
            return Problem(409, "progress-regressed", "Progress went back", str(error), **extra)
        return Problem(409, "job-conflict", "Conflict", str(error), **extra)
    if isinstance(error, ScheduleConflict):
        return Problem(
            409,
            "concurrent-update",
            "Concurrent update",
            str(error),
            schedule_id=str(error.schedule_id),
            current_version=error.current_version,
        )
    if isinstance(error, LimitConflict):
        return Problem(
            409,
            "concurrent-update",
            "Concurrent update",
            str(error),
            limit=error.name,
            current_version=error.current_version,
        )
    if isinstance(error, StreamPositionGone):
        return Problem(
            410,
            "stream-position-gone",
            "Stream position gone",
            str(error),
            event_id=error.event_id,
        )
    if isinstance(error, StepConflict):
        return Problem(409, "invalid-step-transition", "Invalid step transition", str(error))
    if isinstance(error, Unavailable | TransientDatabaseError):
        return Problem(
            503,
            "unavailable",
            "Service unavailable",
            "the database is unavailable or busy; try again shortly",
            headers={"Retry-After": "1"},
        )
    if isinstance(error, StorageUnavailable):
        return storage_problem(error)
    raise TypeError(f"no problem type for {type(error).__name__}")


def storage_problem(error: StorageUnavailable, *, status: int | None = None) -> Problem:
    """A full disk is 507 Insufficient Storage; a read-only database 503 (another server,
    or this one after a failover, may take the write). Either way nothing was stored."""
    retry = {"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)}
    if isinstance(error, StorageFull):
        return Problem(
            status or 507,
            "storage-full",
            "Storage full",
            "the database has no room to write, so nothing of this request was stored; "
            "try again once space has been freed",
            headers=retry,
        )
    if isinstance(error, StorageReadOnly):
        return Problem(
            status or 503,
            "storage-read-only",
            "Storage read-only",
            "the database is read-only, so nothing of this request was stored; try again shortly",
            headers=retry,
        )
    return Problem(
        status or 503,
        "storage-unavailable",
        "Storage unavailable",
        "the database cannot store anything now; nothing of this request was stored",
        headers=retry,
    )


def _render(request: Request, problem: Problem) -> Response:
    return problem_response(
        problem.status,
        problem.kind,
        problem.title,
        problem.detail,
        instance=request.url.path,
        headers=problem.headers,
        **problem.extra,
    )


def _invalid_field(item: Mapping[str, Any]) -> dict[str, str]:
    """One entry of a 422's `errors`: the field and what is wrong with it. A body that is
    not JSON is the body's fault, at a position (not a field named by that position)."""
    if item.get("type") == "json_invalid":
        where = item["loc"][-1] if len(item["loc"]) > 1 else None
        at = f" at character {where}" if isinstance(where, int) else ""
        return {"field": "body", "message": f"is not valid JSON{at} ({item['msg']})"}
    return {"field": _field_name(item["loc"]), "message": item["msg"]}


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts) or "body"


HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
"""The methods routes declare. HEAD is not one of them: it is served wherever GET is
(`HeadRequests`)."""


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path, found by asking the routes
    as the router does, once per method, and HEAD wherever GET is. (The framework's `Allow`
    names the methods of the first route whose path matched: one of several at that path.)"""
    allowed = []
    for method in HTTP_METHODS:
        probe: Scope = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": request.scope.get("headers", []),
            "app": request.app,
        }
        if any(route.matches(dict(probe))[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
            if method == "GET":
                allowed.append("HEAD")
    if request.method in allowed:
        # What matched serves any method and refused this one itself (static files).
        return ["GET", "HEAD"]
    return allowed


def install_problem_handlers(app: FastAPI) -> None:
    async def conveyor_error(request: Request, error: Exception) -> Response:
        if isinstance(error, StorageUnavailable):
            # Once per request, without a traceback: the operator needs the condition,
            # not the call stack that ran into it.
            log.warning(
                "%s: %s %s stored nothing (%s)",
                error.reason,
                request.method,
                request.url.path,
                error,
            )
        return _render(request, problem_for(error))

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [_invalid_field(item) for item in error.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem_response(
            422,
            "validation-error",
            "Invalid input",
            detail or "the request is not valid",
            instance=request.url.path,
            errors=errors,
        )

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        titles = {
            400: "Malformed request",
            404: "Not found",
            405: "Method not allowed",
            413: "Request too large",
        }
        kinds = {404: "not-found", 413: "request-too-large", 400: "malformed-request"}
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(
            error.status_code,
            kinds.get(error.status_code, "http-error"),
            titles.get(error.status_code, "HTTP error"),
            str(error.detail),
            instance=request.url.path,
            headers=headers,
        )

    app.add_exception_handler(Problem, conveyor_error)
    app.add_exception_handler(ConveyorError, conveyor_error)
    app.add_exception_handler(TransientDatabaseError, conveyor_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    # No handler for Exception: Starlette would hand it to ServerErrorMiddleware, which
    # answers and then raises again, closing the connection. `UnexpectedErrors` answers.


def internal_error_response(path: str) -> Response:
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "something went wrong on our side; the server log has the details",
        instance=path,
    )


class UnexpectedErrors:
    """Answers any error nothing else handled with a 500 problem, logs it once with its
    traceback, and lets the connection carry on. A response that had started when the
    error struck cannot be answered any more: its connection is closed at once, so that
    the client sees it cut off rather than complete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = ResponseWatch(send)
        try:
            await self.app(scope, receive, response.send)
        except ClientDisconnect:
            return  # the client hung up: nobody to answer, nothing gone wrong here
        except Exception as error:
            where = f"{scope.get('method')} {scope.get('path')}"
            if response.started:
                log.error("unhandled error on %s; the response was cut off", where, exc_info=error)
                await abort_connection(scope)
                return
            log.error("unhandled error on %s", where, exc_info=error)
            with contextlib.suppress(OSError):
                await internal_error_response(scope.get("path", ""))(scope, receive, send)
