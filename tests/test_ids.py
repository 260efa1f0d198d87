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


def test_ids_behave_as_any_uuid_does() -> None:
    """They are built without `UUID.__init__`: text, equality, hashing, pickling and
    immutability must be those of a UUID made the usual way."""
    import pickle
    from uuid import UUID

    import pytest

    for job_id in uuid7s(20):
        same = UUID(str(job_id))
        assert (job_id == same, hash(job_id) == hash(same)) == (True, True)
        assert pickle.loads(pickle.dumps(job_id)) == job_id
        assert {job_id: 1}[same] == 1
        with pytest.raises(TypeError):
            job_id.int = 0  # type: ignore[misc]
