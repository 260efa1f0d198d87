"""The schedules calls of the SDK, sync and async: mixed into `Client` and `AsyncClient`
(http.py), which give them `request` and the workspace's path.

A schedule is named by its id or its name wherever one is asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from conveyor.client.created import CreatedJob
from conveyor.client.paths import path_segment
from conveyor.domain.schedules import DEFAULT_RUNS_LISTED, MAX_RUNS_LISTED, MAX_SCHEDULES_LISTED

JSON = dict[str, Any]


def schedule_body(
    name: str,
    cron: str,
    job_type: str,
    payload: Any = None,
    *,
    timezone: str | None = None,
    priority: int | None = None,
    max_attempts: int | None = None,
    timeout_seconds: float | None = None,
    concurrency_key: str | None = None,
    overlap: str | None = None,
    catch_up: str | None = None,
    paused: bool | None = None,
) -> JSON:
    """The body of a create request; options left out take the server's defaults."""
    job: JSON = {"type": job_type, "payload": {} if payload is None else payload}
    job_options = {
        "priority": priority,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "concurrency_key": concurrency_key,
    }
    job.update({key: value for key, value in job_options.items() if value is not None})
    body: JSON = {"name": name, "cron": cron, "job": job}
    options = {"timezone": timezone, "overlap": overlap, "catch_up": catch_up, "paused": paused}
    body.update({key: value for key, value in options.items() if value is not None})
    return body


def _path(schedule: object, suffix: str = "") -> str:
    return f"/schedules/{path_segment(str(schedule))}{suffix}"


def _trigger_body(idempotency_key: str | None) -> JSON | None:
    return None if idempotency_key is None else {"idempotency_key": idempotency_key}


def _page_params(limit: int, cursor: str | None) -> JSON:
    return {"limit": limit} if cursor is None else {"limit": limit, "cursor": cursor}


class ScheduleRuns(list[JSON]):
    """A page of a schedule's history, newest first: its runs (a list, so code that reads
    it as one is unchanged), `next_cursor` (pass it as `cursor` for the older runs; None
    on the last page) and the schedule's `schedule_id`."""

    __slots__ = ("next_cursor", "schedule_id")

    def __init__(self, answer: Mapping[str, Any]) -> None:
        super().__init__(answer["data"])
        self.schedule_id: str = answer["schedule_id"]
        self.next_cursor: str | None = answer.get("meta", {}).get("next_cursor")

    def __repr__(self) -> str:
        return f"ScheduleRuns({list.__repr__(self)}, next_cursor={self.next_cursor!r})"


class ScheduleCalls:
    """For `Client`."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    def request_job(self, method: str, path: str, **kwargs: Any) -> CreatedJob:
        raise NotImplementedError

    def _ws(self, suffix: str) -> str:
        raise NotImplementedError

    def create_schedule(
        self, name: str, cron: str, job_type: str, payload: Any = None, **options: Any
    ) -> JSON:
        """A schedule that creates a `job_type` job at every tick of `cron` (5 fields or
        @hourly-style names) in `timezone` (IANA, default UTC)."""
        body = schedule_body(name, cron, job_type, payload, **options)
        result: JSON = self.request("POST", self._ws("/schedules"), json=body)
        return result

    def list_schedules(self, *, limit: int = MAX_SCHEDULES_LISTED) -> list[JSON]:
        """Every schedule of the workspace, by name (read `limit` a request)."""
        return list(self.iter_schedules(limit=limit))

    def iter_schedules(self, *, limit: int = MAX_SCHEDULES_LISTED) -> Iterator[JSON]:
        """Every schedule, by name, page by page by cursor (`limit` a page): each once,
        however many are created or deleted meanwhile."""
        cursor = None
        while True:
            page = self.request("GET", self._ws("/schedules"), params=_page_params(limit, cursor))
            yield from page["data"]
            cursor = page.get("meta", {}).get("next_cursor")
            if not cursor:
                return

    def get_schedule(self, schedule: str) -> JSON:
        result: JSON = self.request("GET", self._ws(_path(schedule)))
        return result

    def update_schedule(self, schedule: str, **changes: Any) -> JSON:
        """Change `cron`, `timezone`, `job` (a dict of the job's fields to change),
        `overlap`, `catch_up` or `paused`; `expected_version` refuses a stale change."""
        result: JSON = self.request("PATCH", self._ws(_path(schedule)), json=changes)
        return result

    def pause_schedule(self, schedule: str) -> JSON:
        return self.update_schedule(schedule, paused=True)

    def resume_schedule(self, schedule: str) -> JSON:
        return self.update_schedule(schedule, paused=False)

    def delete_schedule(self, schedule: str) -> None:
        self.request("DELETE", self._ws(_path(schedule)))

    def trigger_schedule(self, schedule: str, idempotency_key: str | None = None) -> CreatedJob:
        """Run now: the schedule's job, created at once; returns the job. With an
        `idempotency_key` used before, the job that trigger made (`.created` False)."""
        return self.request_job(
            "POST", self._ws(_path(schedule, "/trigger")), json=_trigger_body(idempotency_key)
        )

    def schedule_runs(
        self, schedule: str, limit: int = DEFAULT_RUNS_LISTED, *, cursor: str | None = None
    ) -> ScheduleRuns:
        """What it did, newest first: ticks fired or skipped, triggers, and their jobs; a
        page of `limit` runs, the newest or those older than `cursor` (the `next_cursor`
        of the page before, which runs recorded meanwhile never shift)."""
        return ScheduleRuns(
            self.request(
                "GET", self._ws(_path(schedule, "/runs")), params=_page_params(limit, cursor)
            )
        )

    def iter_schedule_runs(self, schedule: str, *, limit: int = MAX_RUNS_LISTED) -> Iterator[JSON]:
        """Its whole history, newest first, page by page by cursor (`limit` a page): each
        run once, however many are recorded meanwhile."""
        cursor = None
        while True:
            page = self.schedule_runs(schedule, limit, cursor=cursor)
            yield from page
            cursor = page.next_cursor
            if not cursor:
                return


class AsyncScheduleCalls:
    """For `AsyncClient`."""

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def request_job(self, method: str, path: str, **kwargs: Any) -> CreatedJob:
        raise NotImplementedError

    async def ws_path(self, suffix: str) -> str:
        raise NotImplementedError

    async def create_schedule(
        self, name: str, cron: str, job_type: str, payload: Any = None, **options: Any
    ) -> JSON:
        body = schedule_body(name, cron, job_type, payload, **options)
        result: JSON = await self.request("POST", await self.ws_path("/schedules"), json=body)
        return result

    async def list_schedules(self, *, limit: int = MAX_SCHEDULES_LISTED) -> list[JSON]:
        return [schedule async for schedule in self.iter_schedules(limit=limit)]

    async def iter_schedules(self, *, limit: int = MAX_SCHEDULES_LISTED) -> AsyncIterator[JSON]:
        cursor = None
        while True:
            page = await self.request(
                "GET", await self.ws_path("/schedules"), params=_page_params(limit, cursor)
            )
            for schedule in page["data"]:
                yield schedule
            cursor = page.get("meta", {}).get("next_cursor")
            if not cursor:
                return

    async def get_schedule(self, schedule: str) -> JSON:
        result: JSON = await self.request("GET", await self.ws_path(_path(schedule)))
        return result

    async def update_schedule(self, schedule: str, **changes: Any) -> JSON:
        result: JSON = await self.request(
            "PATCH", await self.ws_path(_path(schedule)), json=changes
        )
        return result

    async def pause_schedule(self, schedule: str) -> JSON:
        return await self.update_schedule(schedule, paused=True)

    async def resume_schedule(self, schedule: str) -> JSON:
        return await self.update_schedule(schedule, paused=False)

    async def delete_schedule(self, schedule: str) -> None:
        await self.request("DELETE", await self.ws_path(_path(schedule)))

    async def trigger_schedule(
        self, schedule: str, idempotency_key: str | None = None
    ) -> CreatedJob:
        return await self.request_job(
            "POST",
            await self.ws_path(_path(schedule, "/trigger")),
            json=_trigger_body(idempotency_key),
        )

    async def schedule_runs(
        self, schedule: str, limit: int = DEFAULT_RUNS_LISTED, *, cursor: str | None = None
    ) -> ScheduleRuns:
        return ScheduleRuns(
            await self.request(
                "GET",
                await self.ws_path(_path(schedule, "/runs")),
                params=_page_params(limit, cursor),
            )
        )

    async def iter_schedule_runs(
        self, schedule: str, *, limit: int = MAX_RUNS_LISTED
    ) -> AsyncIterator[JSON]:
        cursor = None
        while True:
            page = await self.schedule_runs(schedule, limit, cursor=cursor)
            for run in page:
                yield run
            cursor = page.next_cursor
            if not cursor:
                return
