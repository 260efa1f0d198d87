"""The PostgreSQL store builds a Job from a row by position: the selected columns must be
Job's fields, in order."""

from __future__ import annotations

from conveyor.domain.jobs import Job
from conveyor.store.queries import JOB_COLUMNS


def test_job_columns_are_job_fields_in_order() -> None:
    assert list(JOB_COLUMNS) == list(Job._fields), (
        "JOB_COLUMNS and Job's fields differ: rows would decode wrongly"
    )
