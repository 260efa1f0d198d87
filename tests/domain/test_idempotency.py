"""Idempotency keys without a database: which keys a client may give, and when a key given
again asks for the same thing."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from conveyor.domain.errors import InvalidInput
from conveyor.domain.idempotency import (
    RETRY_KEY_PREFIX,
    SCHEDULE_KEY_PREFIX,
    SERVER_KEY_PREFIXES,
    default_retry_key,
    same_request,
    validate_client_key,
)
from conveyor.domain.jobs import JobSpec
from conveyor.domain.schedules import manual_idempotency_key, tick_idempotency_key


def test_every_key_the_server_builds_begins_with_a_prefix_clients_may_not_use() -> None:
    schedule_id, job_id = uuid4(), uuid4()
    built = {
        SCHEDULE_KEY_PREFIX: [
            tick_idempotency_key(schedule_id, datetime(2026, 12, 5, 10, 5, tzinfo=UTC)),
            manual_idempotency_key(schedule_id, "click"),
        ],
        RETRY_KEY_PREFIX: [default_retry_key(job_id)],
    }
    assert set(built) == set(SERVER_KEY_PREFIXES)
    for prefix, keys in built.items():
        for key in keys:
            assert key.startswith(prefix)
            with pytest.raises(InvalidInput) as refused:
                validate_client_key(key, "jobs.3.idempotency_key")
            assert refused.value.field == "jobs.3.idempotency_key"
            assert refused.value.message.startswith(f"must not begin with {prefix!r}")


@pytest.mark.parametrize("key", ["order-42", "my-schedule:1", "Schedule:1", "retry", "x:retry:"])
def test_any_other_key_is_a_clients(key: str) -> None:
    validate_client_key(key, "idempotency_key")


def test_the_same_request_is_the_same_type_and_the_same_json_payload() -> None:
    first = JobSpec(type="t", payload={"x": True, "y": [1]}, priority=2)
    assert same_request(first, JobSpec(type="t", payload={"y": [1], "x": True}, priority=9))
    assert not same_request(first, JobSpec(type="u", payload={"x": True, "y": [1]}))
    assert not same_request(first, JobSpec(type="t", payload={"x": 1, "y": [1]}))
    assert not same_request(first, JobSpec(type="t", payload={"x": True, "y": [1.0]}))
