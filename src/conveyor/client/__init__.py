"""Python SDK for the Conveyor HTTP API: `Client` (blocking) and `AsyncClient`."""

from conveyor.client.created import CreatedJob
from conveyor.client.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    GoneError,
    LeaseLostError,
    NotFoundError,
    RateLimitedError,
    StorageFullError,
    StorageReadOnlyError,
    StreamPositionGoneError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    WorkspaceRequired,
)
from conveyor.client.http import AsyncClient, Client
from conveyor.client.schedules import ScheduleRuns

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ConflictError",
    "CreatedJob",
    "ForbiddenError",
    "GoneError",
    "LeaseLostError",
    "NotFoundError",
    "RateLimitedError",
    "ScheduleRuns",
    "StorageFullError",
    "StorageReadOnlyError",
    "StreamPositionGoneError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "WorkspaceRequired",
]
