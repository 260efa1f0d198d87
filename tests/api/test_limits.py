"""The rate limiter's token buckets, on a clock the test moves: a bucket spends a token a
request, refills at `rate` a second up to `burst`, and says when to come back."""

from __future__ import annotations

import pytest

from conveyor.api.limits import RateLimiter
from conveyor.api.problems import Problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def allowed(limiter: RateLimiter, key: str = "k") -> bool:
    try:
        limiter.check(key)
    except Problem as refused:
        status = refused.status
    else:
        return True
    assert status == 429
    return False


def test_a_bucket_spends_its_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [allowed(limiter) for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token
    assert not allowed(limiter)
    clock.now += 0.25  # one token
    assert allowed(limiter)
    assert not allowed(limiter)
    clock.now += 1.0  # two tokens
    assert [allowed(limiter) for _ in range(3)] == [True, True, False]


def test_a_bucket_refills_no_further_than_its_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 3, clock=clock)
    assert [allowed(limiter) for _ in range(3)] == [True, True, True]
    clock.now += 3600  # an hour of refill is still one burst
    assert [allowed(limiter) for _ in range(4)] == [True, True, True, False]


def test_a_refusal_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(0.5, 1, clock=clock)
    assert allowed(limiter)
    with pytest.raises(Problem) as refused:
        limiter.check("k")
    assert refused.value.headers["Retry-After"] == "2"
    assert refused.value.extra["retry_after"] == 2.0
    clock.now += 1.9
    assert not allowed(limiter)
    clock.now += 0.1
    assert allowed(limiter)


def test_keys_have_buckets_of_their_own() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    assert allowed(limiter, "a")
    assert not allowed(limiter, "a")
    assert allowed(limiter, "b")


def test_no_rate_is_no_limit() -> None:
    limiter = RateLimiter(0.0, 1, clock=Clock())
    assert all(allowed(limiter) for _ in range(1000))
