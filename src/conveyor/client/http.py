"""HTTP clients for the Conveyor API. Responses are the API's JSON objects, as dicts.

A workspace key belongs to one workspace, so the workspace is optional: when it is not
given, the client asks the server once (`GET /v1/me`). An instance key belongs to none: give
it the workspace to act in (`workspace=`), or it raises `WorkspaceRequired`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import httpx
import orjson

from conveyor.client.created import CreatedJob, created_job, created_jobs
from conveyor.client.errors import ApiError, WorkspaceRequired, error_for
from conveyor.client.paths import path_segment
from conveyor.client.schedules import AsyncScheduleCalls, ScheduleCalls
from conveyor.client.sse import EventStreamParser, ServerSentEvent

JSON = dict[str, Any]
USER_AGENT = "conveyor-python"
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
"""Streams ping every 15 s: a minute of silence means the connection is dead."""
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0)
END_OF_STREAM = "stream.complete"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
"""Answers a following stream waits out and retries rather than raising."""

EVENTS_PAGE = 1000
"""The most events `GET …/jobs/{id}/events` answers at once (the route's `limit` cap)."""


def events_page(limit: int) -> int:
    """A page size `list_events` may ask for: a short page then means the last."""
    if not 1 <= limit <= EVENTS_PAGE:
        raise ValueError(f"limit: must be between 1 and {EVENTS_PAGE}")
    return limit


def _raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    if response.status_code == 429 and "retry_after" not in problem:
        problem["retry_after"] = float(response.headers.get("retry-after", "1"))
    raise error_for(response.status_code, problem)


def _headers(key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _stream_error(response: httpx.Response, body: bytes) -> ApiError:
    try:
        problem = orjson.loads(body)
    except ValueError:
        problem = {"detail": body.decode(errors="replace")[:500]}
    return error_for(response.status_code, problem if isinstance(problem, dict) else {})


FROM_NOW = -1
"""A stream's start before any event: the server names where it starts (a bare `id:`)."""


class _Resume:
    """Where a stream stands, to resume it after a dropped connection."""

    def __init__(self, last_event_id: int) -> None:
        self.last_event_id = last_event_id
        self.failures = 0

    def headers(self) -> dict[str, str]:
        """Resume after `last_event_id`; a stream `FROM_NOW` sends none and starts at the
        server's now."""
        if self.last_event_id == FROM_NOW:
            return {"Accept": "text/event-stream"}
        return {"Accept": "text/event-stream", "Last-Event-ID": str(self.last_event_id)}

    def at(self, event_id: str | None) -> None:
        """The stream stands at this id (an event's, or where the server started it): a
        reconnect resumes after it, and the stream is making progress."""
        if event_id is not None and event_id.isdigit() and int(event_id) != self.last_event_id:
            self.last_event_id = int(event_id)
            self.failures = 0

    def next_delay(self) -> float:
        delay = RECONNECT_DELAYS[min(self.failures, len(RECONNECT_DELAYS) - 1)]
        self.failures += 1
        return delay


def _workspace_stream_path(
    path: str, job_types: list[str] | None, statuses: list[str] | None
) -> str:
    """The workspace stream's `path` with its filters: only these job types and status
    changes."""
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("type", t) for t in job_types or []
    ]
    params += [("status", s) for s in statuses or []]
    return f"{path}?{httpx.QueryParams(params)}" if params else path


def _stream_start(after_id: int | None) -> int:
    """Where a workspace stream starts: after the event `after_id`, or from now."""
    return after_id if after_id is not None else FROM_NOW


class _Next(Enum):
    """What a stream does after a line (`_StreamLines.feed`)."""

    READ = "read"
    RECONNECT = "reconnect"
    END = "end"


class _StreamLines:
    """One connection's lines, read the same way by both clients: each line moves the
    stream's resume point (an id comes with an event, or alone where a stream starts),
    and answers the event to hand on (or None) and what to do next. `stream.dropped` (the
    server let the stream fall behind): reconnect; `stream.closed`: end; `stream.complete`
    is handed on, then ends."""

    def __init__(self, resume: _Resume) -> None:
        self._parser = EventStreamParser()
        self._resume = resume

    def feed(self, line: str) -> tuple[JSON | None, _Next]:
        event = self._parser.feed(line.rstrip("\r"))
        self._resume.at(self._parser.last_event_id)
        if event is None:
            return None, _Next.READ
        if event.event == "stream.dropped":
            return None, _Next.RECONNECT
        if event.event == "stream.closed":
            return None, _Next.END
        return _event_dict(event), _Next.END if event.event == END_OF_STREAM else _Next.READ


def _event_dict(event: ServerSentEvent) -> JSON:
    data = event.json()
    body: JSON = data if isinstance(data, dict) else {"data": data}
    body.setdefault("type", event.event)
    return body


Moment = datetime | str
"""A moment (a job's `run_at`, the time filters): an aware datetime, or ISO 8601 text
with a zone."""


def _moment(value: Moment) -> str:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone: which moment it names is unknown")
    return value.isoformat()


def job_body(
    job_type: str,
    payload: Any = None,
    *,
    priority: int | None = None,
    agent_task_id: str | None = None,
    max_attempts: int | None = None,
    run_at: Moment | None = None,
    idempotency_key: str | None = None,
    hold: bool | None = None,
    retry_backoff_seconds: float | None = None,
    retry_backoff_max_seconds: float | None = None,
    concurrency_key: str | None = None,
    timeout_seconds: float | None = None,
) -> JSON:
    """The body of a create request; options left out take the server's defaults."""
    body: JSON = {"type": job_type, "payload": {} if payload is None else payload}
    options = {
        "priority": priority,
        "agent_task_id": agent_task_id,
        "max_attempts": max_attempts,
        "run_at": None if run_at is None else _moment(run_at),
        "idempotency_key": idempotency_key,
        "hold": hold,
        "retry_backoff_seconds": retry_backoff_seconds,
        "retry_backoff_max_seconds": retry_backoff_max_seconds,
        "concurrency_key": concurrency_key,
        "timeout_seconds": timeout_seconds,
    }
    body.update({name: value for name, value in options.items() if value is not None})
    return body


Rate = tuple[int, float] | Mapping[str, Any]
"""A limit's rate: `(count, per_seconds)` or `{"count": …, "per_seconds": …}`."""


def limit_path(name: str) -> str:
    """The path of a limit under its workspace."""
    return f"/limits/{path_segment(name)}"


def limit_body(
    max_running: int | None, rate: Rate | None, paused: bool, expected_version: int | None
) -> JSON:
    """The body of a PUT: the whole limit (what is left out is no cap)."""
    body: JSON = {"max_running": max_running, "paused": paused}
    if expected_version is not None:
        body["expected_version"] = expected_version
    if rate is None:
        body["rate"] = None
    elif isinstance(rate, Mapping):
        body["rate"] = {"count": rate["count"], "per_seconds": rate["per_seconds"]}
    else:
        count, per_seconds = rate
        body["rate"] = {"count": count, "per_seconds": per_seconds}
    return body


def settings_body(retention: JSON | None, weight: int | None) -> JSON:
    """The body of a settings PATCH: only what is named changes."""
    body: JSON = {}
    if retention is not None:
        body["retention"] = retention
    if weight is not None:
        body["weight"] = weight
    return body


def workspace_of(me: JSON) -> str:
    """The workspace a key belongs to, from `GET /v1/me`."""
    workspace = me.get("workspace")
    if not workspace:
        raise WorkspaceRequired(
            "this is an instance key: it belongs to no workspace, so name the one to act in "
            "(workspace=…)"
        )
    return str(workspace["slug"])


def filter_values(
    *,
    status: str | list[str] | None = None,
    job_type: str | None = None,
    type_prefix: str | None = None,
    agent_task_id: str | None = None,
    concurrency_key: str | None = None,
    worker_id: str | None = None,
    error_contains: str | None = None,
    created_after: Moment | None = None,
    created_before: Moment | None = None,
    id_contains: str | None = None,
) -> JSON:
    """The list filters by their API names (`job_type` is `type`, `id_contains` is `q`),
    leaving out those not given: the query of `GET …/jobs` and the body of a bulk action."""
    statuses = [status] if isinstance(status, str) else list(status or [])
    values: JSON = {
        "status": statuses or None,
        "type": job_type,
        "type_prefix": type_prefix,
        "agent_task_id": agent_task_id,
        "concurrency_key": concurrency_key,
        "worker_id": worker_id,
        "error_contains": error_contains,
        "created_after": None if created_after is None else _moment(created_after),
        "created_before": None if created_before is None else _moment(created_before),
        "q": id_contains,
    }
    return {name: value for name, value in values.items() if value is not None}


def list_params(
    filters: JSON, *, page: int, limit: int, cursor: str | None
) -> list[tuple[str, str]]:
    # Both when both are given: the server says which mix it refuses, and why.
    params: list[tuple[str, str]] = [("limit", str(limit)), ("page", str(page))]
    if cursor:
        params.append(("cursor", cursor))
    for name, value in filters.items():
        if isinstance(value, list):
            params += [(name, str(item)) for item in value]
        else:
            params.append((name, str(value)))
    return params


def bulk_body(
    filters: JSON, *, everything: bool, dry_run: bool, cursor: str | None, reason: str | None
) -> JSON:
    body: JSON = dict(filters)
    if everything:
        body["all"] = True
    if dry_run:
        body["dry_run"] = True
    if cursor:
        body["cursor"] = cursor
    if reason:
        body["reason"] = reason
    return body


class BulkTally:
    """What repeated bulk requests did, all told (the last one's `remaining`)."""

    def __init__(self) -> None:
        self.answer: JSON = {"matched": 0, "changed": 0, "requests": 0}

    def add(self, answer: JSON) -> str | None:
        """Count one answer in; the cursor to go on with, or None when it was the last."""
        tally = self.answer
        tally.update(
            {key: value for key, value in answer.items() if key not in ("matched", "changed")}
        )
        tally["matched"] += answer["matched"]
        tally["changed"] += answer["changed"]
        tally["requests"] += 1
        cursor: str | None = answer.get("next_cursor") if answer.get("limit_reached") else None
        return cursor


class Client(ScheduleCalls):
    """A blocking client, for scripts and the CLI."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        workspace: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=url.rstrip("/"), headers=_headers(key), timeout=timeout, transport=transport
        )
        self._workspace = workspace

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        _raise_for_problem(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def request_job(self, method: str, path: str, **kwargs: Any) -> CreatedJob:
        """A request that creates a job, or answers the one its idempotency key made."""
        return created_job(self._send(method, path, **kwargs))

    @property
    def workspace(self) -> str:
        if self._workspace is None:
            self._workspace = workspace_of(self.me())
        return self._workspace

    def _ws(self, suffix: str) -> str:
        return f"/v1/workspaces/{self.workspace}{suffix}"

    def me(self) -> JSON:
        result: JSON = self.request("GET", "/v1/me")
        return result

    def create_job(self, job_type: str, payload: Any = None, **options: Any) -> CreatedJob:
        """Create a job (options: those of `job_body`). With an `idempotency_key` used
        before, no second job: the answer is the first one, its `.created` False."""
        return self.request_job(
            "POST", self._ws("/jobs"), json=job_body(job_type, payload, **options)
        )

    def create_jobs(self, jobs: list[JSON]) -> list[CreatedJob]:
        """Create many jobs in one transaction; `jobs` are `job_body(...)` dicts. Each
        answer's `.created` says whether it is new (as `create_job`)."""
        return created_jobs(self.request("POST", self._ws("/jobs/batch"), json={"jobs": jobs}))

    def list_jobs(
        self,
        *,
        status: str | list[str] | None = None,
        job_type: str | None = None,
        type_prefix: str | None = None,
        agent_task_id: str | None = None,
        id_contains: str | None = None,
        concurrency_key: str | None = None,
        worker_id: str | None = None,
        error_contains: str | None = None,
        created_after: Moment | None = None,
        created_before: Moment | None = None,
        page: int = 1,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JSON:
        """A page of jobs, newest first: the `page`-th, or the one after `cursor` (the
        `meta.next_cursor` of the page before; pages by cursor stay put while jobs are
        created), not both (a ValidationError naming `cursor`). Past 10,000 jobs
        `meta.total` is an estimate (`meta.total_is_estimate`)."""
        filters = filter_values(
            status=status,
            job_type=job_type,
            type_prefix=type_prefix,
            agent_task_id=agent_task_id,
            concurrency_key=concurrency_key,
            worker_id=worker_id,
            error_contains=error_contains,
            created_after=created_after,
            created_before=created_before,
            id_contains=id_contains,
        )
        params = list_params(filters, page=page, limit=limit, cursor=cursor)
        result: JSON = self.request("GET", self._ws("/jobs"), params=params)
        return result

    def iter_jobs(self, *, limit: int = 200, **filters: Any) -> Iterator[JSON]:
        """Every job the filters (those of `list_jobs`) match, newest first, page by page
        by cursor: each once, however many are created meanwhile."""
        cursor = None
        while True:
            page = self.list_jobs(limit=limit, cursor=cursor, **filters)
            yield from page["data"]
            cursor = page["meta"]["next_cursor"]
            if not cursor:
                return

    def bulk_cancel(
        self,
        *,
        everything: bool = False,
        reason: str | None = None,
        dry_run: bool = False,
        until_done: bool = True,
        **filters: Any,
    ) -> JSON:
        """Cancel every pending, queued or running job the filters (those of `list_jobs`)
        match, or every one with `everything=True`. The server works on at most 1,000 jobs
        a request; with `until_done` this repeats until none are left and answers the
        totals (`matched`, `changed`, `requests`). `dry_run`: change nothing, say how many
        match (`remaining`)."""
        return self._bulk("/jobs/bulk/cancel", filters, everything, dry_run, until_done, reason)

    def bulk_retry(
        self,
        *,
        everything: bool = False,
        dry_run: bool = False,
        until_done: bool = True,
        **filters: Any,
    ) -> JSON:
        """Run again (each as a new job) every failed or cancelled job the filters match
        that was not run again yet; as `bulk_cancel` otherwise."""
        return self._bulk("/jobs/bulk/retry", filters, everything, dry_run, until_done, None)

    def _bulk(
        self,
        path: str,
        filters: JSON,
        everything: bool,
        dry_run: bool,
        until_done: bool,
        reason: str | None,
    ) -> JSON:
        values = filter_values(**filters)
        tally = BulkTally()
        cursor = None
        while True:
            body = bulk_body(
                values, everything=everything, dry_run=dry_run, cursor=cursor, reason=reason
            )
            cursor = tally.add(self.request("POST", self._ws(path), json=body))
            if cursor is None or not until_done:
                return tally.answer

    def get_settings(self) -> JSON:
        """The workspace's settings (admin): its retention, each value and whether it is
        the workspace's own or the instance's default, and its `weight`."""
        result: JSON = self.request("GET", self._ws("/settings"))
        return result

    def update_settings(self, *, retention: JSON | None = None, weight: int | None = None) -> JSON:
        """Change some settings (admin); what is not named stays as it is.
        `retention={"failed_days": 60}` changes that one value (None keeps forever,
        "default" takes the instance's value again); `weight=3` gives the workspace three
        turns for each of a weight-1 workspace's, and needs an instance admin key
        (ForbiddenError otherwise)."""
        body = settings_body(retention, weight)
        result: JSON = self.request("PATCH", self._ws("/settings"), json=body)
        return result

    def get_job(self, job_id: str | UUID) -> JSON:
        result: JSON = self.request("GET", self._ws(f"/jobs/{job_id}"))
        return result

    def cancel_job(self, job_id: str | UUID, reason: str | None = None) -> JSON:
        body = {"reason": reason} if reason else None
        result: JSON = self.request("POST", self._ws(f"/jobs/{job_id}/cancel"), json=body)
        return result

    def retry_job(self, job_id: str | UUID) -> JSON:
        result: JSON = self.request("POST", self._ws(f"/jobs/{job_id}/retry"))
        return result

    def stream_job_events(
        self, job_id: str | UUID, *, after_seq: int = 0, reconnect: bool = True
    ) -> Iterator[JSON]:
        """A job's events as they happen, then a final `{"type": "stream.complete",
        "status": …}`. A dropped connection is resumed after the last event seen: no event
        is missed or repeated."""
        yield from self._stream(self._ws(f"/jobs/{job_id}/events/stream"), after_seq, reconnect)

    def stream_workspace_events(
        self,
        *,
        job_types: list[str] | None = None,
        statuses: list[str] | None = None,
        after_id: int | None = None,
        reconnect: bool = True,
    ) -> Iterator[JSON]:
        """Every event of the workspace as it happens (optionally only some job types or
        status changes); runs until the caller stops iterating."""
        path = _workspace_stream_path(self._ws("/events/stream"), job_types, statuses)
        yield from self._stream(path, _stream_start(after_id), reconnect)

    def _stream(self, path: str, start: int, reconnect: bool) -> Iterator[JSON]:
        """Events from an SSE route, after `start` (or `FROM_NOW`), resumed after the last
        id seen when the connection drops (`reconnect`)."""
        resume = _Resume(start)
        while True:
            try:
                with self._http.stream(
                    "GET", path, headers=resume.headers(), timeout=STREAM_TIMEOUT
                ) as response:
                    if response.status_code in RETRYABLE_STATUSES and reconnect:
                        response.read()  # busy or briefly without its database: try again
                        time.sleep(resume.next_delay())
                        continue
                    if response.status_code >= 400:
                        raise _stream_error(response, response.read())
                    lines = _StreamLines(resume)
                    for line in response.iter_lines():
                        event, then = lines.feed(line)
                        if event is not None:
                            yield event
                        if then is _Next.END:
                            return
                        if then is _Next.RECONNECT:
                            break
            except (httpx.TransportError, httpx.RemoteProtocolError):
                if not reconnect:
                    raise
            if not reconnect:
                return
            time.sleep(resume.next_delay())

    def workspaces(self) -> list[JSON]:
        """The workspaces this key may act in (`{id, slug}`; an instance admin: every one)."""
        result: list[JSON] = self.request("GET", "/v1/workspaces")["data"]
        return result

    def list_limits(self) -> list[JSON]:
        """The workspace's limits, each with its running and queued jobs now."""
        result: list[JSON] = self.request("GET", self._ws("/limits"))["data"]
        return result

    def get_limit(self, name: str) -> JSON:
        result: JSON = self.request("GET", self._ws(limit_path(name)))
        return result

    def put_limit(
        self,
        name: str,
        *,
        max_running: int | None = None,
        rate: Rate | None = None,
        paused: bool = False,
        expected_version: int | None = None,
    ) -> JSON:
        """Set the limit `name` (a concurrency key, or `type:<job type>`), the whole of it:
        what is left out is no cap. With `expected_version` (the `version` it was read
        at), only if it has not changed since: ConflictError (409) if it has,
        NotFoundError if it was deleted."""
        result: JSON = self.request(
            "PUT",
            self._ws(limit_path(name)),
            json=limit_body(max_running, rate, paused, expected_version),
        )
        return result

    def delete_limit(self, name: str) -> None:
        self.request("DELETE", self._ws(limit_path(name)))

    def stats(self) -> JSON:
        """The workspace's counts by status, throughput by minute, workers and the types
        no worker serves (`GET …/stats`)."""
        result: JSON = self.request("GET", self._ws("/stats"))
        return result

    def list_events(
        self, job_id: str | UUID, after_seq: int = 0, *, limit: int = EVENTS_PAGE
    ) -> list[JSON]:
        """A job's events after `after_seq`, oldest first: a page of up to `limit` (at most
        1,000). `iter_events` reads them all."""
        params = {"after_seq": after_seq, "limit": events_page(limit)}
        path = self._ws(f"/jobs/{job_id}/events")
        result: list[JSON] = self.request("GET", path, params=params)["data"]
        return result

    def iter_events(
        self, job_id: str | UUID, after_seq: int = 0, *, limit: int = EVENTS_PAGE
    ) -> Iterator[JSON]:
        """Every event of a job after `after_seq` written so far, oldest first, page by page
        (`limit` a page): each page starts after the last event of the one before. To
        follow a running job's events as they come, `stream_job_events`. A page size out
        of range is refused here, not when the iteration starts."""
        return self._event_pages(job_id, after_seq, events_page(limit))

    def _event_pages(self, job_id: str | UUID, after_seq: int, limit: int) -> Iterator[JSON]:
        while True:
            page = self.list_events(job_id, after_seq, limit=limit)
            yield from page
            if len(page) < limit:
                return
            after_seq = page[-1]["seq"]


class AsyncClient(AsyncScheduleCalls):
    """The same calls for asyncio code."""

    def __init__(
        self,
        url: str,
        key: str | None = None,
        *,
        workspace: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: httpx.Limits | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=_headers(key),
            timeout=timeout,
            transport=transport,
            limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self._workspace = workspace

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._http.request(method, path, **kwargs)
        _raise_for_problem(response)
        return response

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, path, **kwargs)
        return response.json() if response.content else None

    async def request_job(self, method: str, path: str, **kwargs: Any) -> CreatedJob:
        """A request that creates a job, or answers the one its idempotency key made."""
        return created_job(await self._send(method, path, **kwargs))

    async def workspace(self) -> str:
        if self._workspace is None:
            self._workspace = workspace_of(await self.me())
        return self._workspace

    async def ws_path(self, suffix: str) -> str:
        return f"/v1/workspaces/{await self.workspace()}{suffix}"

    async def me(self) -> JSON:
        result: JSON = await self.request("GET", "/v1/me")
        return result

    async def create_job(self, job_type: str, payload: Any = None, **options: Any) -> CreatedJob:
        """As `Client.create_job`."""
        return await self.request_job(
            "POST", await self.ws_path("/jobs"), json=job_body(job_type, payload, **options)
        )

    async def create_jobs(self, jobs: list[JSON]) -> list[CreatedJob]:
        """As `Client.create_jobs`."""
        path = await self.ws_path("/jobs/batch")
        return created_jobs(await self.request("POST", path, json={"jobs": jobs}))

    async def list_jobs(
        self,
        *,
        status: str | list[str] | None = None,
        job_type: str | None = None,
        type_prefix: str | None = None,
        agent_task_id: str | None = None,
        id_contains: str | None = None,
        concurrency_key: str | None = None,
        worker_id: str | None = None,
        error_contains: str | None = None,
        created_after: Moment | None = None,
        created_before: Moment | None = None,
        page: int = 1,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JSON:
        filters = filter_values(
            status=status,
            job_type=job_type,
            type_prefix=type_prefix,
            agent_task_id=agent_task_id,
            concurrency_key=concurrency_key,
            worker_id=worker_id,
            error_contains=error_contains,
            created_after=created_after,
            created_before=created_before,
            id_contains=id_contains,
        )
        params = list_params(filters, page=page, limit=limit, cursor=cursor)
        result: JSON = await self.request("GET", await self.ws_path("/jobs"), params=params)
        return result

    async def iter_jobs(self, *, limit: int = 200, **filters: Any) -> AsyncIterator[JSON]:
        cursor = None
        while True:
            page = await self.list_jobs(limit=limit, cursor=cursor, **filters)
            for job in page["data"]:
                yield job
            cursor = page["meta"]["next_cursor"]
            if not cursor:
                return

    async def bulk_cancel(
        self,
        *,
        everything: bool = False,
        reason: str | None = None,
        dry_run: bool = False,
        until_done: bool = True,
        **filters: Any,
    ) -> JSON:
        return await self._bulk(
            "/jobs/bulk/cancel", filters, everything, dry_run, until_done, reason
        )

    async def bulk_retry(
        self,
        *,
        everything: bool = False,
        dry_run: bool = False,
        until_done: bool = True,
        **filters: Any,
    ) -> JSON:
        return await self._bulk("/jobs/bulk/retry", filters, everything, dry_run, until_done, None)

    async def _bulk(
        self,
        path: str,
        filters: JSON,
        everything: bool,
        dry_run: bool,
        until_done: bool,
        reason: str | None,
    ) -> JSON:
        values = filter_values(**filters)
        tally = BulkTally()
        cursor = None
        while True:
            body = bulk_body(
                values, everything=everything, dry_run=dry_run, cursor=cursor, reason=reason
            )
            answer = await self.request("POST", await self.ws_path(path), json=body)
            cursor = tally.add(answer)
            if cursor is None or not until_done:
                return tally.answer

    async def get_settings(self) -> JSON:
        result: JSON = await self.request("GET", await self.ws_path("/settings"))
        return result

    async def update_settings(
        self, *, retention: JSON | None = None, weight: int | None = None
    ) -> JSON:
        """As `Client.update_settings`."""
        body = settings_body(retention, weight)
        result: JSON = await self.request("PATCH", await self.ws_path("/settings"), json=body)
        return result

    async def get_job(self, job_id: str | UUID) -> JSON:
        result: JSON = await self.request("GET", await self.ws_path(f"/jobs/{job_id}"))
        return result

    async def cancel_job(self, job_id: str | UUID, reason: str | None = None) -> JSON:
        body = {"reason": reason} if reason else None
        result: JSON = await self.request(
            "POST", await self.ws_path(f"/jobs/{job_id}/cancel"), json=body
        )
        return result

    async def retry_job(self, job_id: str | UUID) -> JSON:
        result: JSON = await self.request("POST", await self.ws_path(f"/jobs/{job_id}/retry"))
        return result

    async def workspaces(self) -> list[JSON]:
        """The workspaces this key may act in (`{id, slug}`; an instance admin: every one)."""
        result: list[JSON] = (await self.request("GET", "/v1/workspaces"))["data"]
        return result

    async def list_limits(self) -> list[JSON]:
        """The workspace's limits, each with its running and queued jobs now."""
        result: list[JSON] = (await self.request("GET", await self.ws_path("/limits")))["data"]
        return result

    async def get_limit(self, name: str) -> JSON:
        result: JSON = await self.request("GET", await self.ws_path(limit_path(name)))
        return result

    async def put_limit(
        self,
        name: str,
        *,
        max_running: int | None = None,
        rate: Rate | None = None,
        paused: bool = False,
        expected_version: int | None = None,
    ) -> JSON:
        """Set the limit `name` (a concurrency key, or `type:<job type>`), the whole of it:
        what is left out is no cap. With `expected_version` (the `version` it was read
        at), only if it has not changed since: ConflictError (409) if it has,
        NotFoundError if it was deleted."""
        result: JSON = await self.request(
            "PUT",
            await self.ws_path(limit_path(name)),
            json=limit_body(max_running, rate, paused, expected_version),
        )
        return result

    async def delete_limit(self, name: str) -> None:
        await self.request("DELETE", await self.ws_path(limit_path(name)))

    async def stream_job_events(
        self, job_id: str | UUID, *, after_seq: int = 0, reconnect: bool = True
    ) -> AsyncIterator[JSON]:
        """A job's events as they happen, then `{"type": "stream.complete", …}`; resumes
        by itself after a dropped connection."""
        path = await self.ws_path(f"/jobs/{job_id}/events/stream")
        async with contextlib.aclosing(self._stream(path, after_seq, reconnect)) as events:
            async for event in events:
                yield event

    async def stream_workspace_events(
        self,
        *,
        job_types: list[str] | None = None,
        statuses: list[str] | None = None,
        after_id: int | None = None,
        reconnect: bool = True,
    ) -> AsyncIterator[JSON]:
        """Every event of the workspace as it happens (optionally only some job types or
        status changes); runs until the caller stops iterating."""
        path = _workspace_stream_path(await self.ws_path("/events/stream"), job_types, statuses)
        start = _stream_start(after_id)
        async with contextlib.aclosing(self._stream(path, start, reconnect)) as events:
            async for event in events:
                yield event

    async def _stream(self, path: str, start: int, reconnect: bool) -> AsyncGenerator[JSON, None]:
        """`Client._stream` for asyncio."""
        resume = _Resume(start)
        while True:
            try:
                async with self._http.stream(
                    "GET", path, headers=resume.headers(), timeout=STREAM_TIMEOUT
                ) as response:
                    if response.status_code in RETRYABLE_STATUSES and reconnect:
                        await response.aread()  # busy or briefly without its database
                        await asyncio.sleep(resume.next_delay())
                        continue
                    if response.status_code >= 400:
                        raise _stream_error(response, await response.aread())
                    lines = _StreamLines(resume)
                    async for line in response.aiter_lines():
                        event, then = lines.feed(line)
                        if event is not None:
                            yield event
                        if then is _Next.END:
                            return
                        if then is _Next.RECONNECT:
                            break
            except (httpx.TransportError, httpx.RemoteProtocolError):
                if not reconnect:
                    raise
            if not reconnect:
                return
            await asyncio.sleep(resume.next_delay())

    async def stats(self) -> JSON:
        """The workspace's counts by status, throughput by minute, workers and the types
        no worker serves (`GET …/stats`)."""
        result: JSON = await self.request("GET", await self.ws_path("/stats"))
        return result

    async def list_events(
        self, job_id: str | UUID, after_seq: int = 0, *, limit: int = EVENTS_PAGE
    ) -> list[JSON]:
        """A job's events after `after_seq`, oldest first: a page of up to `limit` (at most
        1,000). `iter_events` reads them all."""
        params = {"after_seq": after_seq, "limit": events_page(limit)}
        path = await self.ws_path(f"/jobs/{job_id}/events")
        result: list[JSON] = (await self.request("GET", path, params=params))["data"]
        return result

    def iter_events(
        self, job_id: str | UUID, after_seq: int = 0, *, limit: int = EVENTS_PAGE
    ) -> AsyncIterator[JSON]:
        """Every event of a job after `after_seq` written so far, oldest first, page by page
        (`limit` a page; `async for`). To follow a running job's events as they come,
        `stream_job_events`. A page size out of range is refused here, not when the
        iteration starts."""
        return self._event_pages(job_id, after_seq, events_page(limit))

    async def _event_pages(
        self, job_id: str | UUID, after_seq: int, limit: int
    ) -> AsyncIterator[JSON]:
        while True:
            page = await self.list_events(job_id, after_seq, limit=limit)
            for event in page:
                yield event
            if len(page) < limit:
                return
            after_seq = page[-1]["seq"]
