"""Idempotency keys: when a key given again stands for the same request."""

from __future__ import annotations

from typing import Protocol

from conveyor.domain.events import JsonValue
from conveyor.domain.limits import same_json


class Request(Protocol):
    """What a key stands for: a job asked for, or the job it made."""

    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> JsonValue: ...


def same_request(first: Request, again: Request) -> bool:
    """Whether a key given `again` asks for what it asked `first`: the same type and the
    same payload, as JSON (`true` is not `1`). Its other fields (priority, run_at…) may
    differ: the key's first request is what it stands for."""
    return first.type == again.type and same_json(first.payload, again.payload)
