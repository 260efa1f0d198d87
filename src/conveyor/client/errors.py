"""Problem responses (RFC 9457) as exceptions, one class per status a caller handles."""

from __future__ import annotations

from typing import Any

from conveyor.domain.errors import LeaseLossReason, Resource
from conveyor.domain.workspaces import Permission


class ApiError(Exception):
    """The server answered with an error; `problem` is its problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", "about:blank"))
        self.detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        super().__init__(f"{status} {self.detail}")


class UnauthorizedError(ApiError):
    pass


class ForbiddenError(ApiError):
    @property
    def permission(self) -> Permission | None:
        """What the key may not do, as a code (`set_weight`: only an instance admin key
        may); None when the server does not say, or says what this client does not know."""
        try:
            return Permission(str(self.problem.get("permission", "")))
        except ValueError:
            return None


class NotFoundError(ApiError):
    @property
    def resource(self) -> Resource | None:
        """What was not found, as a code (`limit`: deleted, or never made; `workspace`: the
        workspace named does not exist); None when the server does not say (a path no
        route serves), or says what this client does not know."""
        try:
            return Resource(str(self.problem.get("resource", "")))
        except ValueError:
            return None

    @property
    def no_route(self) -> bool:
        """Whether no route of a Conveyor API answered: every one names what it did not
        find (`resource`, even one this client does not know), so a 404 that names nothing
        came from a path no route serves (a base URL with a path after it, `…/v1`), or from
        another service or a proxy, problem+json or not. (A server from before 404s named
        their resource names nothing either.)"""
        return self.problem.get("resource") is None


class ConflictError(ApiError):
    @property
    def current_version(self) -> int | None:
        value = self.problem.get("current_version")
        return value if isinstance(value, int) else None


class LeaseLostError(ConflictError):
    """The worker no longer holds the job's lease: stop working on it. `reason` says why,
    as a code (None when a newer server sends one this client does not know)."""

    @property
    def reason(self) -> LeaseLossReason | None:
        try:
            return LeaseLossReason(str(self.problem.get("reason", "")))
        except ValueError:
            return None

    @property
    def cancelled(self) -> bool:
        return self.reason == LeaseLossReason.CANCELLED


class ValidationError(ApiError):
    @property
    def fields(self) -> list[str]:
        return [str(error.get("field")) for error in self.problem.get("errors", [])]


class RateLimitedError(ApiError):
    @property
    def retry_after(self) -> float:
        return float(self.problem.get("retry_after", 1.0))


class UnavailableError(ApiError):
    pass


class StorageFullError(ApiError):
    """507: the server's database has no room to write; nothing of the request was stored.
    Trying again helps once an operator has freed space."""


class StorageReadOnlyError(UnavailableError):
    """503: the server's database is read-only (a standby, say); nothing was stored."""


class WorkspaceRequired(ValueError):
    """An instance key belongs to no workspace: a call about one needs it named (the
    client's `workspace=`). Raised by the client itself, before any request."""


class GoneError(ApiError):
    pass


class StreamPositionGoneError(GoneError):
    """A workspace stream cannot resume where it was: events it had not sent yet were
    deleted by retention since. Start the stream afresh (without `after_id`), and read
    what matters from the jobs themselves."""

    @property
    def event_id(self) -> int | None:
        value = self.problem.get("event_id")
        return value if isinstance(value, int) else None


def error_for(status: int, problem: dict[str, Any]) -> ApiError:
    if status == 409 and problem.get("type") == "/problems/lease-lost":
        return LeaseLostError(status, problem)
    if status == 503 and problem.get("type") == "/problems/storage-read-only":
        return StorageReadOnlyError(status, problem)
    if status == 410 and problem.get("type") == "/problems/stream-position-gone":
        return StreamPositionGoneError(status, problem)
    kind = {
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        409: ConflictError,
        410: GoneError,
        422: ValidationError,
        429: RateLimitedError,
        503: UnavailableError,
        507: StorageFullError,
    }.get(status, ApiError)
    return kind(status, problem)
