"""Closing a client's connection at once, which ASGI has no message for.

An application that stops in the middle of a response makes the server close the
connection the polite way: send what is buffered, then close. A client that never reads
never takes what is buffered, so that connection would stay open for as long as the
client likes. `abort_connection` resets it instead.

uvicorn hands the application the `send` of its request cycle, which holds the
connection's transport: `remember_transport`, called before anything wraps `send`, keeps
the transport's `abort` in the request's scope. Under another server there is nothing to
remember, and `abort_connection` leaves the closing to the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Message, Scope, Send

ABORT_KEY = "conveyor.abort_connection"


def remember_transport(scope: Scope, send: Send) -> None:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        scope[ABORT_KEY] = abort


async def abort_connection(scope: Scope) -> bool:
    """Reset the request's connection now; False when that cannot be done from here."""
    abort: Callable[[], None] | None = scope.get(ABORT_KEY)
    if abort is None:
        return False
    abort()
    # Let the server learn that the connection is gone before the application returns:
    # it then neither waits on the connection nor reports a response left unfinished.
    await asyncio.sleep(0)
    return True


class ResponseWatch:
    """An application's `send`, watched: once the response has started, no other answer
    can be sent in its place."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
