"""Opaque cursors: the token a list's page gives (`meta.next_cursor`) for the page after it.

A cursor is text of the list's own making (its kind, and the sort key of the last item of
a page), written in URL-safe base64 without padding: a client passes it back as it is,
and a token the server did not write is refused as invalid input naming `cursor`.
"""

from __future__ import annotations

import base64
import binascii

from conveyor.domain.errors import InvalidInput


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The text `encode_cursor` wrote; ValueError for a token it could not have written."""
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error) as error:
        raise ValueError(token) from error


def invalid_cursor() -> InvalidInput:
    """What a list answers a token it cannot read."""
    return InvalidInput(
        "cursor", "is not a cursor this server gave (take meta.next_cursor as it is)"
    )
