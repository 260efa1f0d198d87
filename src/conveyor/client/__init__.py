"""Python SDK for the Conveyor HTTP API: `Client` (blocking) and `AsyncClient`."""

from conveyor.client.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    GoneError,
    LeaseLostError,
    NotFoundError,
    RateLimitedError,
    StreamPositionGoneError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
)
from conveyor.client.http import AsyncClient, Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "LeaseLostError",
    "NotFoundError",
    "RateLimitedError",
    "StreamPositionGoneError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
]
