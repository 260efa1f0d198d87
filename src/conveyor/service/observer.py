"""Who is told what happened to jobs: the metrics listen here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from conveyor.domain.jobs import ClaimedJob, CompletedJob, Job


class JobObserver(Protocol):
    def jobs_created(self, jobs: Sequence[Job]) -> None: ...

    def jobs_claimed(self, jobs: Sequence[Job | ClaimedJob]) -> None: ...

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None: ...

    def job_settled(self, job: Job) -> None: ...

    def leases_expired(self, count: int) -> None: ...

    def conflict_retried(self, error: BaseException) -> None: ...


class Unobserved:
    """Watches nothing: the service's observer unless given one, and a base for an
    observer that watches only some of it."""

    def jobs_created(self, jobs: Sequence[Job]) -> None:
        return None

    def jobs_claimed(self, jobs: Sequence[Job | ClaimedJob]) -> None:
        return None

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None:
        return None

    def job_settled(self, job: Job) -> None:
        return None

    def leases_expired(self, count: int) -> None:
        return None

    def conflict_retried(self, error: BaseException) -> None:
        return None
