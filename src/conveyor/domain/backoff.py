"""The one backoff formula: exponential, capped, spread by jitter.

Used for a failed job's retry, a conflicting write's next try, a worker's or listener's
reconnect and a stream feed's re-check: each with its own first delay and cap.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(attempt: int, *, first: float, cap: float, jitter: float) -> float:
    """The wait after try number `attempt` (1, 2, …): `first`, doubling each try, at most
    `cap`; `jitter` in [0, 1] picks a point in the upper half of that bound, so that
    clients that failed together do not come back together (1 gives the bound itself)."""
    bound = min(cap, first * 2.0 ** max(attempt - 1, 0))
    return bound / 2 + bound / 2 * jitter


class Backoff:
    """Successive `backoff_delay`s for one thing being tried again and again."""

    def __init__(
        self,
        first: float = 0.1,
        cap: float = 5.0,
        *,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.first = first
        self.cap = cap
        self._jitter = jitter
        self._attempt = 0

    def next(self) -> float:
        self._attempt += 1
        return backoff_delay(self._attempt, first=self.first, cap=self.cap, jitter=self._jitter())

    def reset(self) -> None:
        self._attempt = 0
