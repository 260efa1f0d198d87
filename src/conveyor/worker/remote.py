"""The worker backend for remote workers ("coordinators"): the HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from conveyor.client import AsyncClient
from conveyor.client.errors import (
    ApiError,
    LeaseLostError,
    NotFoundError,
    RateLimitedError,
    UnavailableError,
    error_for,
)
from conveyor.domain.errors import LeaseLossReason
from conveyor.domain.jobs import CLAIM_LIMIT_OVER_HTTP, ClaimedJob
from conveyor.worker.backend import (
    AccessRefused,
    BackendUnavailable,
    CompletionReport,
    LeaseGone,
    NoApi,
    ReportRejected,
    ReportTooLarge,
    UnknownWorkspace,
)


def translate(error: ApiError) -> Exception:
    if isinstance(error, LeaseLostError):
        return LeaseGone(error.reason or LeaseLossReason.GONE, error.detail)
    if isinstance(error, NotFoundError):
        return LeaseGone(LeaseLossReason.GONE, error.detail)
    if isinstance(error, UnavailableError | RateLimitedError) or error.status >= 500:
        return BackendUnavailable(error.detail)
    if error.status in (401, 403):
        return AccessRefused(f"Conveyor refused this worker's key ({error.status}): {error.detail}")
    if error.status == 413:
        return ReportTooLarge(error.detail)
    return ReportRejected(error.detail)


def translate_claim_error(error: ApiError) -> Exception:
    """A claim is about no job, so its 404 is no lease gone: a workspace it names does not
    exist (or is not the key's), which no retry mends; one that names nothing came from no
    Conveyor API at all."""
    if isinstance(error, NotFoundError) and error.no_route:
        return NoApi(f"no Conveyor API answered the claim ({error.status}): {error.detail}")
    if isinstance(error, NotFoundError):
        return UnknownWorkspace(
            f"Conveyor refused this worker's claims ({error.status}): {error.detail} (a worker "
            "claims only from workspaces that exist, and with a workspace key only from its own)"
        )
    return translate(error)


def claimed(body: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(
        id=UUID(body["id"]),
        type=body["type"],
        payload=body["payload"],
        attempt=body["attempt"],
        max_attempts=body["max_attempts"],
        priority=body["priority"],
        agent_task_id=body.get("agent_task_id"),
        lease_id=UUID(body["lease_id"]),
        lease_expires_at=_optional_time(body.get("lease_expires_at")),
        run_at=_optional_time(body.get("run_at")),
        started_at=_optional_time(body.get("started_at")),
        timeout_seconds=body.get("timeout_seconds"),
        workspace_id=UUID(body["workspace_id"]),
    )


def _optional_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class HttpBackend:
    """Claims go to `POST /v1/claims` (a workspace key claims from its own workspace, an
    instance key from every workspace or those named); reports go to the routes of each
    job's own workspace."""

    def __init__(self, client: AsyncClient, *, workspaces: Sequence[str] | None = None) -> None:
        self._client = client
        self._workspaces = None if workspaces is None else list(workspaces)

    @classmethod
    def connect(cls, url: str, key: str, *, workspaces: Sequence[str] | None = None) -> HttpBackend:
        return cls(AsyncClient(url, key, timeout=30.0), workspaces=workspaces)

    async def _request(
        self,
        method: str,
        path: str,
        worker_id: str,
        *,
        request_timeout: float | None = None,
        translated: Callable[[ApiError], Exception] = translate,
        **kwargs: Any,
    ) -> Any:
        try:
            extra: dict[str, Any] = {"headers": {"Conveyor-Worker-Id": worker_id}}
            if request_timeout is not None:
                extra["timeout"] = request_timeout
            return await self._client.request(method, path, **extra, **kwargs)
        except ApiError as error:
            raise translated(error) from error
        except httpx.TransportError as error:
            raise BackendUnavailable(f"cannot reach Conveyor: {error!r}") from error

    async def _report(
        self, method: str, job: ClaimedJob, suffix: str, worker_id: str, **kwargs: Any
    ) -> Any:
        path = f"/v1/workspaces/{job.workspace_id}/jobs/{job.id}{suffix}"
        return await self._request(method, path, worker_id, **kwargs)

    async def claim(
        self,
        types: list[str] | None,
        *,
        limit: int,
        lease_seconds: float,
        wait_seconds: float,
        worker_id: str,
    ) -> list[ClaimedJob]:
        body = await self._request(
            "POST",
            "/v1/claims",
            worker_id,
            request_timeout=wait_seconds + 30.0,
            translated=translate_claim_error,
            json={
                "workspaces": self._workspaces,
                "types": types,
                "limit": min(limit, CLAIM_LIMIT_OVER_HTTP),  # more slots claim again
                "lease_seconds": lease_seconds,
                "wait_seconds": wait_seconds,
                "worker_id": worker_id,
            },
        )
        return [claimed(job) for job in body["data"]]

    async def heartbeat(self, job: ClaimedJob, lease_seconds: float, worker_id: str) -> None:
        await self._report(
            "POST",
            job,
            "/heartbeat",
            worker_id,
            json={"lease_id": str(job.lease_id), "lease_seconds": lease_seconds},
        )

    async def complete_many(
        self, reports: list[CompletionReport], worker_id: str
    ) -> list[Exception | None]:
        """One request per workspace among the reports (each one statement there)."""
        by_workspace: dict[UUID | None, list[int]] = {}
        for index, report in enumerate(reports):
            by_workspace.setdefault(report.job.workspace_id, []).append(index)
        outcomes: list[Exception | None] = [None] * len(reports)
        for workspace_id, indexes in by_workspace.items():
            body = await self._request(
                "POST",
                f"/v1/workspaces/{workspace_id}/completions",
                worker_id,
                json={
                    "completions": [
                        {
                            "job_id": str(reports[i].job.id),
                            "lease_id": str(reports[i].job.lease_id),
                            "result": reports[i].result,
                        }
                        for i in indexes
                    ]
                },
            )
            for index, item in zip(indexes, body["data"], strict=True):
                if item["status"] != "completed":
                    problem = item["error"]
                    outcomes[index] = translate(error_for(int(problem["status"]), problem))
        return outcomes

    async def fail(
        self,
        job: ClaimedJob,
        error: str,
        retryable: bool,
        worker_id: str,
        detail: str | None = None,
        timed_out_after: float | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "lease_id": str(job.lease_id),
            "error": error,
            "error_detail": detail,
            "retryable": retryable,
        }
        if timed_out_after is not None:
            body |= {"timed_out": True, "timeout_seconds": timed_out_after}
        await self._report("POST", job, "/fail", worker_id, json=body)

    async def release(self, job: ClaimedJob, worker_id: str) -> None:
        await self._report("POST", job, "/release", worker_id, json={"lease_id": str(job.lease_id)})

    async def progress(
        self, job: ClaimedJob, percent: int, message: str | None, worker_id: str
    ) -> None:
        await self._report(
            "PATCH",
            job,
            "/progress",
            worker_id,
            json={
                "progress_percent": percent,
                "message": message,
                "lease_id": str(job.lease_id),
                "allow_decrease": True,
            },
        )

    async def add_step(
        self,
        job: ClaimedJob,
        *,
        name: str,
        phase: str,
        step_type: str,
        status: str,
        worker_id: str,
    ) -> UUID:
        body = await self._report(
            "POST",
            job,
            "/steps",
            worker_id,
            json={
                "name": name,
                "phase": phase,
                "type": step_type,
                "status": status,
                "lease_id": str(job.lease_id),
            },
        )
        return UUID(body["id"])

    async def update_step(
        self, job: ClaimedJob, step_id: UUID, changes: dict[str, Any], worker_id: str
    ) -> None:
        await self._report(
            "PATCH",
            job,
            f"/steps/{step_id}",
            worker_id,
            json={"lease_id": str(job.lease_id), **changes},
        )

    async def event(
        self,
        job: ClaimedJob,
        event_type: str,
        payload: Any,
        step_id: UUID | None,
        worker_id: str,
    ) -> None:
        await self._report(
            "POST",
            job,
            "/events",
            worker_id,
            json={
                "type": event_type,
                "payload": payload,
                "step_id": None if step_id is None else str(step_id),
                "lease_id": str(job.lease_id),
            },
        )

    async def close(self) -> None:
        await self._client.aclose()
