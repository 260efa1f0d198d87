"""JSON out of Conveyor: orjson, plus the UUID subclass asyncpg hands back (orjson writes
`uuid.UUID` itself but not subclasses; converting every id on the way in would cost more
than writing them on the way out)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson


def _default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)
