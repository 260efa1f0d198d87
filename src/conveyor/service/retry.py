"""The one place conflicts are retried: bounded exponential backoff with jitter."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from conveyor.domain.backoff import backoff_delay
from conveyor.domain.errors import TransientDatabaseError

T = TypeVar("T")


class WriteConflict(Exception):
    """A guarded write missed because the row changed after we read it. Deciding again on
    a fresh read is the fix, so this is the error the retry helper retries."""


RETRYABLE: tuple[type[BaseException], ...] = (WriteConflict, TransientDatabaseError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    """Tries in all, the first included."""
    base_delay: float = 0.002
    max_delay: float = 0.2

    def delay(self, retry_number: int, jitter: float) -> float:
        """Jittered, so colliding writers spread."""
        return backoff_delay(retry_number, first=self.base_delay, cap=self.max_delay, jitter=jitter)


async def retry_on_conflict(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `operation`; when it raises a retryable conflict, wait and run it again, at most
    `policy.attempts` times in all. The last conflict propagates to the caller."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await operation()
        except RETRYABLE as conflict:
            if attempt == policy.attempts:
                raise
            if on_retry is not None:
                on_retry(conflict)
            await sleep(policy.delay(attempt, jitter()))
    raise AssertionError("unreachable: the loop returns or raises")
