"""Idempotency keys: when a key given again stands for the same request, and the keys the
server builds for itself.

The server creates some jobs under keys of its own: a schedule's tick or trigger
(`schedule:<id>:…`), a retry that was given no key (`retry:<old id>`). It relies on
finding its own job under such a key: the scheduler takes the job it finds as the tick's,
a bulk retry skips a job whose retry key is taken. A client's job under one of those keys
would be taken for the server's, so a key a client gives may not begin with the prefix of
a key the server builds.
"""

from __future__ import annotations

from typing import Final, Protocol
from uuid import UUID

from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import JsonValue
from conveyor.domain.limits import same_json

SCHEDULE_KEY_PREFIX: Final = "schedule:"
"""A schedule's job has the key `schedule:<schedule id>:<tick>` (or, a trigger's,
`schedule:<schedule id>:manual:<token>`): one job per tick, whichever server fires it."""
RETRY_KEY_PREFIX: Final = "retry:"
"""A retry's key, unless the caller gives one, is this and the old job's id: retrying a job
twice gives the same new job, and a bulk retry skips jobs run again."""
SERVER_KEY_PREFIXES: Final = {
    SCHEDULE_KEY_PREFIX: "the scheduler's (a schedule's jobs have the keys schedule:<id>:…)",
    RETRY_KEY_PREFIX: "the retries' (a retry given no key has the key retry:<old job id>)",
}
"""Each prefix of the keys the server builds, with whose keys begin with it."""


def default_retry_key(job_id: UUID) -> str:
    return f"{RETRY_KEY_PREFIX}{job_id}"


def validate_client_key(key: str, field: str) -> None:
    """Refuse a key a client gives that begins as the server's own keys do."""
    for prefix, owner in SERVER_KEY_PREFIXES.items():
        if key.startswith(prefix):
            raise InvalidInput(
                field,
                f"must not begin with {prefix!r}: that prefix is {owner}",
            )


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
