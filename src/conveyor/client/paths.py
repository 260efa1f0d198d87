"""Names in URLs: what the SDK puts in a path."""

from __future__ import annotations

from urllib.parse import quote


def path_segment(text: str) -> str:
    """`text` as one segment of a URL's path: percent-encoded whole (a limit's name may hold
    any printable character: `type:email.send`, `customer/42`), and its dots too where the
    segment is only dots (`.`, `..`), which URL normalisation would otherwise remove (and
    the request would go to the parent path)."""
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if not quoted.strip(".") else quoted
