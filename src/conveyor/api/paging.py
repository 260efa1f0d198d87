"""How lists page over HTTP, the same for every list that pages (jobs, schedules): by
`page` number, or deep by the opaque `cursor` the page before gave (`meta.next_cursor`),
and the `meta` every such page answers with (`schemas.PageMeta`). A list that only grows
at its head and has no cheap total (a schedule's runs) pages by cursor alone, and its
`meta` says only `limit` and `next_cursor`."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import Query

from conveyor.domain.errors import InvalidInput

PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="meta.next_cursor of the page before (instead of page)",
    ),
]


class _Position(Protocol):
    def encode(self) -> str: ...


class ListPage(Protocol):
    """What a service's page of a list says of itself."""

    @property
    def total(self) -> int: ...
    @property
    def page(self) -> int | None: ...
    @property
    def limit(self) -> int: ...
    @property
    def total_pages(self) -> int: ...
    @property
    def total_is_estimate(self) -> bool: ...
    @property
    def next_cursor(self) -> _Position | None: ...


def one_way_to_page(page: int, cursor: str | None) -> None:
    """A request names a page by number or by cursor, not both."""
    if cursor is not None and page != 1:
        raise InvalidInput("cursor", "page by cursor or by page number, not both")


def page_meta(found: ListPage) -> dict[str, Any]:
    """A page's `meta` (described by schemas.PageMeta)."""
    return {
        "total": found.total,
        "page": found.page,
        "limit": found.limit,
        "total_pages": found.total_pages,
        "total_is_estimate": found.total_is_estimate,
        "next_cursor": None if found.next_cursor is None else found.next_cursor.encode(),
    }


def cursor_page_meta(limit: int, next_cursor: _Position | None) -> dict[str, Any]:
    """The `meta` of a page of a list that pages by cursor alone."""
    return {"limit": limit, "next_cursor": None if next_cursor is None else next_cursor.encode()}
