"""Job ids sort in creation order: UUIDv7 with a counter, one at a time or many at once."""

from __future__ import annotations

from conveyor.ids import uuid7, uuid7s


def test_ids_one_at_a_time_and_in_batches_strictly_increase() -> None:
    # More than the 4,096 counter values of one millisecond: the counter overflows into
    # the next millisecond instead of wrapping.
    ids = [uuid7() for _ in range(100)] + uuid7s(5000) + [uuid7()] + uuid7s(3) + uuid7s(0)
    assert ids == sorted(ids), "ids went backwards"
    assert len(set(ids)) == len(ids), "an id repeated"


def test_ids_are_version_7_with_the_rfc_variant() -> None:
    for job_id in [uuid7(), *uuid7s(50)]:
        assert job_id.version == 7
        assert job_id.int >> 62 & 0b11 == 0b10
