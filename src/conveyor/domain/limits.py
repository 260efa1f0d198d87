"""Limits on what callers send: JSON documents (payloads, results, event payloads) and
free text. Checked before anything is written; a refusal names the field.

Both databases must store whatever passes, identically: so no NUL characters (PostgreSQL
text cannot hold them), no lone surrogates (not UTF-8), no integers beyond 64 bits and
no NaN or infinities (not JSON)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def validate_text(text: str, field: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        raise InvalidInput(field, problem)


def validate_json(value: Any, field: str, limits: JsonLimits) -> None:
    """Refuse a JSON document that is too deep, too large, or holds a value that JSON or
    the databases cannot represent faithfully."""
    if value is None:
        return  # most results: nothing to walk
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limits.max_depth:
                raise InvalidInput(field, f"is nested deeper than {limits.max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InvalidInput(field, "object keys must be strings")
                    if (problem := text_problem(key)) is not None:
                        raise InvalidInput(field, f"object keys {problem}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                raise InvalidInput(field, f"strings {problem}")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not -INT64 <= item < INT64:
                raise InvalidInput(field, "integers must fit in 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(field, "numbers must be finite (no NaN or Infinity)")
        else:
            raise InvalidInput(field, f"holds a {type(item).__name__}, which is not JSON")
    size = len(orjson.dumps(value))
    if size > limits.max_bytes:
        raise InvalidInput(field, f"is {size} bytes as JSON; the limit is {limits.max_bytes}")
