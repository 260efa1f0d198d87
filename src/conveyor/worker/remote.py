"""The worker backend for remote workers ("coordinators"): the HTTP API."""

from __future__ import annotations

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
    ReportRejected,
    ReportTooLarge,
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
    )


def _optional_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class HttpBackend:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, url: str, key: str, *, workspace: str | None = None) -> HttpBackend:
        return cls(AsyncClient(url, key, workspace=workspace, timeout=30.0))

    async def _request(
        self,
        method: str,
        suffix: str,
        worker_id: str,
        *,
        request_timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        try:
            path = await self._client.ws_path(suffix)
            extra: dict[str, Any] = {"headers": {"Conveyor-Worker-Id": worker_id}}
            if request_timeout is not None:
                extra["timeout"] = request_timeout
            return await self._client.request(method, path, **extra, **kwargs)
        except ApiError as error:
            raise translate(error) from error
        except httpx.TransportError as error:
            raise BackendUnavailable(f"cannot reach Conveyor: {error!r}") from error

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
            "/claims",
            worker_id,
            request_timeout=wait_seconds + 30.0,
            json={
                "types": types,
                "limit": min(limit, CLAIM_LIMIT_OVER_HTTP),  # more slots claim again
                "lease_seconds": lease_seconds,
                "wait_seconds": wait_seconds,
                "worker_id": worker_id,
            },
        )
        return [claimed(job) for job in body["data"]]

    async def heartbeat(
        self, job_id: UUID, lease_id: UUID, lease_seconds: float, worker_id: str
    ) -> None:
        await self._request(
            "POST",
            f"/jobs/{job_id}/heartbeat",
            worker_id,
            json={"lease_id": str(lease_id), "lease_seconds": lease_seconds},
        )

    async def complete_many(
        self, reports: list[CompletionReport], worker_id: str
    ) -> list[Exception | None]:
        body = await self._request(
            "POST",
            "/completions",
            worker_id,
            json={
                "completions": [
                    {"job_id": str(r.job_id), "lease_id": str(r.lease_id), "result": r.result}
                    for r in reports
                ]
            },
        )
        outcomes: list[Exception | None] = []
        for item in body["data"]:
            if item["status"] == "completed":
                outcomes.append(None)
            else:
                problem = item["error"]
                outcomes.append(translate(error_for(int(problem["status"]), problem)))
        return outcomes

    async def fail(
        self,
        job_id: UUID,
        lease_id: UUID,
        error: str,
        retryable: bool,
        worker_id: str,
        detail: str | None = None,
        timed_out_after: float | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "lease_id": str(lease_id),
            "error": error,
            "error_detail": detail,
            "retryable": retryable,
        }
        if timed_out_after is not None:
            body |= {"timed_out": True, "timeout_seconds": timed_out_after}
        await self._request("POST", f"/jobs/{job_id}/fail", worker_id, json=body)

    async def release(self, job_id: UUID, lease_id: UUID, worker_id: str) -> None:
        await self._request(
            "POST", f"/jobs/{job_id}/release", worker_id, json={"lease_id": str(lease_id)}
        )

    async def progress(
        self, job_id: UUID, lease_id: UUID, percent: int, message: str | None, worker_id: str
    ) -> None:
        await self._request(
            "PATCH",
            f"/jobs/{job_id}/progress",
            worker_id,
            json={
                "progress_percent": percent,
                "message": message,
                "lease_id": str(lease_id),
                "allow_decrease": True,
            },
        )

    async def add_step(
        self,
        job_id: UUID,
        lease_id: UUID,
        *,
        name: str,
        phase: str,
        step_type: str,
        status: str,
        worker_id: str,
    ) -> UUID:
        body = await self._request(
            "POST",
            f"/jobs/{job_id}/steps",
            worker_id,
            json={
                "name": name,
                "phase": phase,
                "type": step_type,
                "status": status,
                "lease_id": str(lease_id),
            },
        )
        return UUID(body["id"])

    async def update_step(
        self, job_id: UUID, lease_id: UUID, step_id: UUID, changes: dict[str, Any], worker_id: str
    ) -> None:
        await self._request(
            "PATCH",
            f"/jobs/{job_id}/steps/{step_id}",
            worker_id,
            json={"lease_id": str(lease_id), **changes},
        )

    async def event(
        self,
        job_id: UUID,
        lease_id: UUID,
        event_type: str,
        payload: Any,
        step_id: UUID | None,
        worker_id: str,
    ) -> None:
        await self._request(
            "POST",
            f"/jobs/{job_id}/events",
            worker_id,
            json={
                "type": event_type,
                "payload": payload,
                "step_id": None if step_id is None else str(step_id),
                "lease_id": str(lease_id),
            },
        )

    async def close(self) -> None:
        await self._client.aclose()
