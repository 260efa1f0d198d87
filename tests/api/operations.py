"""Every operation of the API (`/v1/…`) as its OpenAPI document lists it, with a URL to
call it at: workspace `acme`, and a fresh id for every other path parameter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import uuid4

import httpx


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    url: str
    takes_body: bool


async def api_operations(http: httpx.AsyncClient) -> list[Operation]:
    paths = (await http.get("/openapi.json")).json()["paths"]
    return [
        Operation(
            method.upper(),
            path,
            re.sub(r"\{[^}]+\}", str(uuid4()), path.replace("{ws}", "acme")),
            "requestBody" in operation,
        )
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
    ]
