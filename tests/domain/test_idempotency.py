"""Idempotency keys without a database: when a key given again asks for the same thing."""

from __future__ import annotations

from conveyor.domain.idempotency import same_request
from conveyor.domain.jobs import JobSpec


def test_the_same_request_is_the_same_type_and_the_same_json_payload() -> None:
    first = JobSpec(type="t", payload={"x": True, "y": [1]}, priority=2)
    assert same_request(first, JobSpec(type="t", payload={"y": [1], "x": True}, priority=9))
    assert not same_request(first, JobSpec(type="u", payload={"x": True, "y": [1]}))
    assert not same_request(first, JobSpec(type="t", payload={"x": 1, "y": [1]}))
    assert not same_request(first, JobSpec(type="t", payload={"x": True, "y": [1.0]}))
