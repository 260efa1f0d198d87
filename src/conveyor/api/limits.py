"""Request size and rate limits, enforced before a handler runs."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.connections import ResponseWatch
from conveyor.api.problems import Problem, problem_response


class BodyTooLarge(HTTPException):
    """Raised while a body streams in: an HTTPException, so FastAPI passes it through
    (rather than calling it a parse error) and it becomes a 413 problem."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


class RequestSizeLimit:
    """Refuses bodies over `max_bytes` with 413, whether announced by Content-Length or
    discovered while a chunked body streams in, so no handler ever buffers one."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        response = ResponseWatch(send)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, response.send)
        except BodyTooLarge:
            if not response.started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "request-too-large",
            "Request too large",
            f"the request body is larger than {self.max_bytes} bytes",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key: `rate` requests a second sustained, `burst` at once. Per
    server process (with several processes behind a balancer, each has its own)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int = 100_000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def check(self, key: str, cost: float = 1.0) -> None:
        if not self.enabled:
            return
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return
        wait = (cost - bucket.tokens) / self.rate
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"this key may make {self.rate:g} such requests a second (bursts of {self.burst}); "
            f"try again in {wait:.1f}s",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            retry_after=round(wait, 3),
        )
