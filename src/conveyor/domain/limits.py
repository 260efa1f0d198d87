"""Limits on what callers send: JSON documents (payloads, results, event payloads), free
text and instants. Checked before anything is written; a refusal names the field.

Both databases must store whatever passes, identically: so no NUL characters (PostgreSQL
text cannot hold them), no lone surrogates (not UTF-8), no integers beyond 64 bits and
no NaN or infinities (not JSON)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from conveyor.domain.errors import InvalidInput

INT64 = 2**63


@dataclass(frozen=True, slots=True)
class JsonLimits:
    max_bytes: int = 262_144
    max_depth: int = 32


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if text.isascii():
        return None  # most text; only the rest can hold a lone surrogate
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def validate_text(text: str, field: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInput(field, problem)


EARLIEST_INSTANT: Final = datetime(1, 1, 2, tzinfo=UTC)
LATEST_INSTANT: Final = datetime(9999, 12, 30, tzinfo=UTC)
"""The instants callers may give (a job's `run_at`, a list's `created_after`): the years
Python can read back, less a day at each end. A time whose UTC falls outside the years
1..9999 (9999-12-31T23:59:59-14:00) is stored, but reading it fails, so one job due then
broke every list of its workspace and the lease reaper; and SQLite keeps seconds as a
REAL, which rounds 9999-12-31T23:59:59.999999Z up into year 10000."""


def validate_instant(moment: datetime, field: str) -> None:
    """Refuse an instant that could not be stored and read back (compared, not converted:
    converting one out of range to UTC is the overflow)."""
    if moment.tzinfo is None:
        raise InvalidInput(field, "must carry a time zone")
    if not EARLIEST_INSTANT <= moment <= LATEST_INSTANT:
        earliest, latest = (
            f"{moment.date()}T00:00Z" for moment in (EARLIEST_INSTANT, LATEST_INSTANT)
        )
        raise InvalidInput(field, f"must fall from {earliest} to {latest}")


def same_json(first: Any, second: Any) -> bool:
    """Whether two JSON documents are the same document. Not `==`: Python takes `true`
    for `1` and `1` for `1.0`, so a change from one to the other would read as no change
    (and a request repeated with another payload as the same request)."""
    return bool(
        orjson.dumps(first, option=orjson.OPT_SORT_KEYS)
        == orjson.dumps(second, option=orjson.OPT_SORT_KEYS)
    )


def validate_json(value: Any, field: str, limits: JsonLimits) -> None:
    """Refuse a JSON document that is too deep, too large, or holds a value that JSON or
    the databases cannot represent faithfully."""
    if value is None:
        return  # most results: nothing to walk
    # Objects and arrays wait on the stack with their depth; other values are checked
    # where they are met. The document itself is the one child of a depth-0 array.
    stack: list[tuple[dict[Any, Any] | list[Any], int]] = [([value], 0)]
    while stack:
        container, depth = stack.pop()
        if depth > limits.max_depth:
            raise InvalidInput(field, f"is nested deeper than {limits.max_depth} levels")
        if isinstance(container, dict):
            for key in container:
                if not isinstance(key, str):
                    raise InvalidInput(field, "object keys must be strings")
                if (problem := text_problem(key)) is not None:
                    raise InvalidInput(field, f"object keys {problem}")
            children: Iterable[Any] = container.values()
        else:
            children = container
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif (problem := _scalar_problem(child)) is not None:
                raise InvalidInput(field, problem)
    size = len(orjson.dumps(value))
    if size > limits.max_bytes:
        raise InvalidInput(field, f"is {size} bytes as JSON; the limit is {limits.max_bytes}")


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str):
        problem = text_problem(item)
        return None if problem is None else f"strings {problem}"
    if isinstance(item, bool) or item is None:
        return None
    if isinstance(item, int):
        return None if -INT64 <= item < INT64 else "integers must fit in 64 bits"
    if isinstance(item, float):
        return None if math.isfinite(item) else "numbers must be finite (no NaN or Infinity)"
    return f"holds a {type(item).__name__}, which is not JSON"
