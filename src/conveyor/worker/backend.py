"""What a worker needs from Conveyor, whichever way it reaches it: in the server's own
process (`ServiceBackend`, no HTTP hop) or over HTTP (`HttpBackend`)."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol
from uuid import UUID

from conveyor.domain.errors import LeaseLossReason
from conveyor.domain.jobs import ClaimedJob as ClaimedJob  # where backends have found it


class LeaseGone(Exception):
    """The job is no longer ours (cancelled, reassigned, expired, timed out, gone): stop
    working on it and report nothing more. `reason` says which; `detail` says it in words."""

    def __init__(self, reason: LeaseLossReason, detail: str | None = None) -> None:
        self.reason = reason
        self.detail = detail or reason.description
        super().__init__(self.detail)

    @property
    def cancelled(self) -> bool:
        return self.reason == LeaseLossReason.CANCELLED


class WorkerRefused(Exception):
    """Conveyor refuses this worker for a reason trying again cannot change (a mistake in
    its configuration): the worker stops, and the message says why."""


class AccessRefused(WorkerRefused):
    """Conveyor refused the worker's key (unknown, revoked, or without the rights to
    claim): trying again cannot help, so the worker stops."""


class NoApi(WorkerRefused):
    """No Conveyor API answered the worker's claim: a 404 that names nothing, from a path no
    route serves (a URL with the API's own path after it, `…/v1`) or from another service.
    The worker stops; the CLI says what its --url should be."""


class UnknownWorkspace(WorkerRefused):
    """A workspace the worker claims from does not exist (or, for a workspace key, is not
    its own). A workspace that exists never answers a claim 404, so this is no passing
    failure: the worker stops."""


class BackendUnavailable(Exception):
    """Conveyor cannot be reached right now (network, restart, database down): try again."""


class ReportRejected(Exception):
    """Conveyor refused a report for a reason trying again will not change."""


class ReportTooLarge(ReportRejected):
    """The request carrying the report was too large; a smaller one may pass."""


# Named tuples, not frozen dataclasses: a busy worker builds thousands a second.
class CompletionReport(NamedTuple):
    job: ClaimedJob
    result: Any


class WorkerBackend(Protocol):
    """Every report names the claimed job it is about: its id, its lease (the fencing
    token) and its workspace (a worker with an instance key serves several)."""

    async def claim(
        self,
        types: list[str] | None,
        *,
        limit: int,
        lease_seconds: float,
        wait_seconds: float,
        worker_id: str,
    ) -> list[ClaimedJob]: ...

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float, worker_id: str) -> None: ...

    async def complete_many(
        self, reports: list[CompletionReport], worker_id: str
    ) -> list[Exception | None]:
        """One outcome per report, in order: None when completed, else why not."""
        ...

    async def fail(
        self,
        job: ClaimedJob,
        error: str,
        retryable: bool,
        worker_id: str,
        detail: str | None = None,
        timed_out_after: float | None = None,
    ) -> None:
        """Fail the attempt; `timed_out_after` (seconds) says it ran past that timeout."""
        ...

    async def release(self, job: ClaimedJob, worker_id: str) -> None: ...

    async def progress(
        self, job: ClaimedJob, percent: int, message: str | None, worker_id: str
    ) -> None: ...

    async def add_step(
        self,
        job: ClaimedJob,
        *,
        name: str,
        phase: str,
        step_type: str,
        status: str,
        worker_id: str,
    ) -> UUID: ...

    async def update_step(
        self, job: ClaimedJob, step_id: UUID, changes: dict[str, Any], worker_id: str
    ) -> None: ...

    async def event(
        self,
        job: ClaimedJob,
        event_type: str,
        payload: Any,
        step_id: UUID | None,
        worker_id: str,
    ) -> None: ...

    async def close(self) -> None: ...
