"""JSON responses serialised by orjson, which also writes UUIDs and datetimes."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from conveyor.serialization import dumps


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )
