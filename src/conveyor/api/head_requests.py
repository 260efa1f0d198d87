"""`HEAD` for every route that answers `GET` (RFC 9110 §9.3.2): balancers and uptime
checks probe `/healthz` with it. The framework's own routes (the static files, the OpenAPI
document) answer it and the API's routes do not; rather than declare it route by route
(and see it doubled in the OpenAPI document), a `HEAD` request is served here as its `GET`:
the same status and headers — the same checks, a key's included — and no body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # The request's own scope keeps saying HEAD to the server (which then sends no
        # body) and to the middleware outside (the access log, the metrics); what the
        # routes note in the request's state (the key's id) is shared.
        scope.setdefault("state", {})
        as_get: Scope = {**scope, "method": "GET"}
        answered = False

        async def send_head(message: Message) -> None:
            nonlocal answered
            if answered:
                return  # the body, which a HEAD answer does without
            await send(message)
            if message["type"] == "http.response.start":
                # Ended at once: an event stream's body never would. The server then tells
                # the route the client is gone, which stops a stream.
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        try:
            await self.app(as_get, receive, send_head)
        finally:
            # The route that matched, for the access log and the metrics outside.
            scope.update({name: value for name, value in as_get.items() if name != "method"})
