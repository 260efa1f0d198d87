"""Request ids, access logs and HTTP metrics, for every request.

A request id comes from the caller's X-Request-ID (when it is sane) or is made here; it
goes back in the response, and into every log line written while the request runs. The
access log names the route template and the key id, never the key."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor import logs
from conveyor.metrics import Metrics

log = logging.getLogger("conveyor.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class Observability:
    def __init__(self, app: ASGIApp, metrics: Metrics, *, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered if offered and REQUEST_ID.match(offered) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status = 500
        streaming = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
                streaming = any(
                    name == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in headers
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            if not streaming:
                self.metrics.http_duration.labels(method, route).observe(elapsed)
            if self.access_log:
                path_params = scope.get("path_params") or {}
                job_token = (
                    logs.job_id.set(str(path_params["job_id"])) if "job_id" in path_params else None
                )
                log.info(
                    "%s %s %s %.1fms",
                    method,
                    route,
                    status,
                    elapsed * 1000,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "key_id": scope.get("state", {}).get("key_id"),
                    },
                )
                if job_token is not None:
                    logs.job_id.reset(job_token)
            logs.request_id.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
