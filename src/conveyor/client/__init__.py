"""Python SDK for the Conveyor HTTP API: `Client` (blocking) and `AsyncClient`."""

from conveyor.client.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    LeaseLostError,
    NotFoundError,
    RateLimitedError,
    StorageFullError,
    StorageReadOnlyError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    WorkspaceRequired,
)
from conveyor.client.http import AsyncClient, Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ConflictError",
    "ForbiddenError",
    "LeaseLostError",
    "NotFoundError",
    "RateLimitedError",
    "StorageFullError",
    "StorageReadOnlyError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "WorkspaceRequired",
]
