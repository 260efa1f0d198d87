"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the service raises maps to one problem type here, and nowhere else; a 500
says only that something went wrong (the log has the rest)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from conveyor.domain.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    ConveyorError,
    IdempotencyConflict,
    InvalidInput,
    InvalidTransition,
    JobConflict,
    LeaseLost,
    NotFound,
    ProgressRegressed,
    ResultConflict,
    StepConflict,
    StreamPositionGone,
    TransientDatabaseError,
    Unavailable,
)
from conveyor.serialization import dumps

log = logging.getLogger("conveyor.api")

PROBLEM_JSON = "application/problem+json"


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
        return Problem(404, "not-found", "Not found", str(error))
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
    if isinstance(error, IdempotencyConflict):
        return Problem(
            409,
            "idempotency-conflict",
            "Idempotency key reused",
            str(error),
            job_id=str(error.job_id),
        )
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
        if isinstance(error, ConcurrentUpdate):
            return Problem(409, "concurrent-update", "Concurrent update", str(error), **extra)
        if isinstance(error, ResultConflict):
            return Problem(409, "result-conflict", "Different result", str(error), **extra)
        if isinstance(error, ProgressRegressed):
            return Problem(409, "progress-regressed", "Progress went back", str(error), **extra)
        return Problem(409, "job-conflict", "Conflict", str(error), **extra)
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
    raise TypeError(f"no problem type for {type(error).__name__}")


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


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    async def conveyor_error(request: Request, error: Exception) -> Response:
        return _render(request, problem_for(error))

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [
            {"field": _field_name(item["loc"]), "message": item["msg"]} for item in error.errors()
        ]
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
        return problem_response(
            error.status_code,
            kinds.get(error.status_code, "http-error"),
            titles.get(error.status_code, "HTTP error"),
            str(error.detail),
            instance=request.url.path,
            headers=dict(error.headers or {}),
        )

    async def unexpected_error(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "Internal server error",
            "something went wrong on our side; the server log has the details",
            instance=request.url.path,
        )

    app.add_exception_handler(Problem, conveyor_error)
    app.add_exception_handler(ConveyorError, conveyor_error)
    app.add_exception_handler(TransientDatabaseError, conveyor_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
