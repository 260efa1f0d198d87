"""Server-Sent Events: follow a job, or a whole workspace, live.

A stream subscribes to the event hub *before* it reads history from the database, then
replays, then goes live, dropping what it has already sent (by seq on a job's stream, by
position on a workspace's): so an event committed while the stream starts is neither lost
nor sent twice. `Last-Event-ID` (or `?after_seq=` / `?after_id=`) resumes exactly after
the given event.

Every send to the client is bounded by `sse_send_timeout_seconds`: a client that takes no
data for that long (it stopped reading, or its network did) is disconnected, its
subscription released, and counted in `conveyor_sse_clients_disconnected_total{reason="slow"}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from conveyor.api.connections import abort_connection
from conveyor.api.dependencies import ApiContext, Context, authorized, caller_still_valid
from conveyor.api.filters import JobTypeText
from conveyor.api.problems import Problem
from conveyor.api.schemas import ProblemOut
from conveyor.bus.hub import StreamFilter, Subscription
from conveyor.domain.errors import JobNotFound, TransientDatabaseError, Unavailable
from conveyor.domain.events import LARGEST_EVENT_ID, LARGEST_SEQ, Event, StreamPosition
from conveyor.domain.jobs import JobStatus
from conveyor.domain.status import TERMINAL_EVENTS
from conveyor.domain.workspaces import Permission
from conveyor.serialization import dumps
from conveyor.service.workspaces import Principal

log = logging.getLogger("conveyor.api.streams")
router = APIRouter(prefix="/v1/workspaces/{ws}", tags=["streams"])

Streamer = Annotated[Principal, authorized(Permission.STREAM)]
REPLAY_PAGE = 500
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "an event stream"}
}


FRAME_MEMORY = 4096
_frames: OrderedDict[tuple[UUID, int, int, int], bytes] = OrderedDict()
"""Recently encoded frames by (job, seq, event id, stream id): every stream following a
job sends the same bytes for an event, so it is encoded once, not once per stream. The
job id keeps servers on different databases in one process apart."""


def sse(event: Event, *, stream_id: int) -> bytes:
    key = (event.job_id, event.seq, event.id, stream_id)
    frame = _frames.get(key)
    if frame is None:
        frame = _encode(event, stream_id)
        _frames[key] = frame
        if len(_frames) > FRAME_MEMORY:
            _frames.popitem(last=False)
    return frame


def _encode(event: Event, stream_id: int) -> bytes:
    data = {
        "id": event.id,
        "job_id": event.job_id,
        "job_type": event.job_type,
        "seq": event.seq,
        "step_id": event.step_id,
        "type": event.type,
        "actor": event.actor,
        "timestamp": event.timestamp,
        "payload": event.payload,
    }
    return f"id: {stream_id}\nevent: {event.type}\ndata: ".encode() + dumps(data) + b"\n\n"


def control(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + dumps(data) + b"\n\n"


class Recheck:
    """A stream asks once per ping interval, busy or idle, whether its key still holds."""

    def __init__(self, request: Request, ctx: ApiContext, principal: Principal) -> None:
        self._request = request
        self._ctx = ctx
        self._principal = principal
        self._next = time.monotonic() + ctx.settings.sse_ping_seconds

    async def still_good(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return True
        self._next = now + self._ctx.settings.sse_ping_seconds
        return await caller_still_valid(self._request, self._ctx, self._principal)


CATCH_UP = None
"""What `live_batches` yields when the stream must read what it missed from the database."""


async def live_batches(
    ctx: ApiContext, subscription: Subscription, credentials: Recheck
) -> AsyncIterator[bytes | list[Event] | None]:
    """The live part of every stream: batches of events as the hub delivers them; bytes to
    send between them (pings); CATCH_UP when notices may have been lost. Ends when the
    stream must: the server stops, the client fell behind, or the key was revoked."""
    while True:
        batch = await subscription.next_batch(ctx.settings.sse_ping_seconds)
        if subscription.closing:
            return
        if subscription.dropped is not None:
            ctx.metrics.sse_disconnects.labels("behind").inc()
            yield control("stream.dropped", {"reason": subscription.dropped})
            return
        if subscription.catch_up_needed:
            subscription.catch_up_needed = False
            yield CATCH_UP
        if not await credentials.still_good():
            yield control("stream.closed", {"reason": "the API key was revoked"})
            return
        yield batch if batch else b": ping\n\n"


def resilient(stream: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    """A stream whose database goes away ends quietly (its client reconnects and resumes
    from its last event) instead of failing mid-response. Closing it closes `stream` at
    once (releasing its subscription), not whenever the collector gets to it."""

    async def guarded() -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in stream:
                yield chunk
        except (Unavailable, TransientDatabaseError) as error:
            log.warning("ending a stream: the database is unavailable (%s)", error)
        finally:
            await stream.aclose()

    return guarded()


class _SlowClient(Exception):
    """A send to the client did not complete within the deadline."""


class EventStreamResponse(StreamingResponse):
    """`text/event-stream`, each send bounded by `send_timeout` seconds. A client that
    takes nothing for that long is cut off: the events stop (their subscription is
    released), `on_slow_client` is told, and the connection is reset. It could not be
    closed politely, which would wait for the client to read what is buffered."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        *,
        send_timeout: float,
        on_slow_client: Callable[[], None],
    ) -> None:
        super().__init__(events, media_type="text/event-stream", headers=STREAM_HEADERS)
        self._events = events
        self._send_timeout = send_timeout
        self._on_slow_client = on_slow_client
        self._scope: Scope = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        async def bounded_send(message: Message) -> None:
            try:
                async with asyncio.timeout(self._send_timeout):
                    await send(message)
            except TimeoutError:
                raise _SlowClient from None

        try:
            await super().stream_response(bounded_send)
        except _SlowClient:
            await self._events.aclose()
            self._on_slow_client()
            log.warning(
                "disconnecting an event stream's client (%s): it took no data for %gs",
                self._scope.get("path"),
                self._send_timeout,
            )
            await abort_connection(self._scope)


def invalid_resume_point(field: str, detail: str, message: str) -> Problem:
    return Problem(
        422,
        "validation-error",
        "Invalid input",
        detail,
        errors=[{"field": field, "message": message}],
    )


def resume_point(last_event_id: str | None, after: int | None, *, largest: int) -> int:
    if last_event_id is not None:
        try:
            value = int(last_event_id)
        except ValueError:
            raise invalid_resume_point(
                "Last-Event-ID", "Last-Event-ID must be an event number", "must be an integer"
            ) from None
        if not 0 <= value <= largest:
            raise invalid_resume_point(
                "Last-Event-ID",
                f"Last-Event-ID must be between 0 and {largest}",
                f"must be 0..{largest}",
            )
        return value
    return after or 0


def _after_event(after_id: int | None, after_seq: int | None) -> tuple[int | None, str]:
    """The workspace stream's resume point from its query, and the parameter that gave it:
    `after_seq` is `after_id`'s other name there (the one a job's stream takes)."""
    if after_seq is None:
        return after_id, "after_id"
    if after_id is not None and after_id != after_seq:
        raise invalid_resume_point(
            "after_seq",
            "after_id and after_seq name the same position: give one of them",
            "differs from after_id",
        )
    return after_seq, "after_seq"


def event_stream(ctx: ApiContext, body: AsyncGenerator[bytes, None]) -> StreamingResponse:
    return EventStreamResponse(
        resilient(body),
        send_timeout=ctx.settings.sse_send_timeout_seconds,
        on_slow_client=ctx.metrics.sse_disconnects.labels("slow").inc,
    )


@router.get(
    "/jobs/{job_id}/events/stream",
    responses=SSE_RESPONSES,
    summary="Follow a job's events live (SSE); ends with stream.complete",
)
async def stream_job(
    ctx: Context,
    principal: Streamer,
    job_id: UUID,
    request: Request,
    after_seq: Annotated[int | None, Query(ge=0, le=LARGEST_SEQ)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    after = resume_point(last_event_id, after_seq, largest=LARGEST_SEQ)
    job = await ctx.jobs.get_job(principal.workspace.id, job_id)  # 404 before any stream
    return event_stream(ctx, _job_events(ctx, principal, request, job.id, after))


async def _job_events(
    ctx: ApiContext, principal: Principal, request: Request, job_id: UUID, cursor: int
) -> AsyncGenerator[bytes, None]:
    workspace_id = principal.workspace.id
    credentials = Recheck(request, ctx, principal)
    finished: str | None = None
    """The status the job ended with, once its terminal event has been sent."""

    async def catch_up() -> AsyncIterator[bytes]:
        """Everything after the cursor that the database has."""
        nonlocal cursor, finished
        while True:
            page = await ctx.jobs.list_events(
                workspace_id, job_id, after_seq=cursor, limit=REPLAY_PAGE
            )
            for event in page:
                yield sse(event, stream_id=event.seq)
                cursor = event.seq
                finished = TERMINAL_EVENTS.get(event.type, finished)
            if len(page) < REPLAY_PAGE:
                return

    def completion() -> bytes:
        return control("stream.complete", {"job_id": job_id, "status": finished})

    # Subscribed first, within the generator (so it is always released), then replayed.
    with ctx.hub.subscribe(workspace_id, StreamFilter(job_id=job_id)) as subscription:
        yield b"retry: 3000\n\n"
        async for chunk in catch_up():
            yield chunk
        try:
            job = await ctx.jobs.get_job(workspace_id, job_id)
        except JobNotFound:  # deleted (by retention) since the stream began
            yield control("stream.closed", {"reason": "the job no longer exists"})
            return
        if job.status.is_terminal:
            async for chunk in catch_up():
                yield chunk
            finished = job.status.value
        if finished is not None:
            yield completion()
            return
        async for batch in live_batches(ctx, subscription, credentials):
            if isinstance(batch, bytes):
                yield batch
                continue
            frames: list[bytes] = []
            for event in batch or ():
                if event.seq <= cursor:
                    continue
                if event.seq == cursor + 1:
                    frames.append(sse(event, stream_id=event.seq))
                    cursor = event.seq
                    finished = TERMINAL_EVENTS.get(event.type, finished)
                else:
                    break  # a gap: the database has what is missing, and this event too
            if frames:
                yield b"".join(frames)  # one write for the batch
            if batch is CATCH_UP or (batch and batch[-1].seq > cursor):
                async for chunk in catch_up():
                    yield chunk
            if finished is not None:
                yield completion()
                return


@router.get(
    "/events/stream",
    responses={
        **SSE_RESPONSES,
        410: {
            "model": ProblemOut,
            "description": "stream-position-gone: events after the resume point were deleted "
            "by retention; start afresh",
        },
        422: {"model": ProblemOut, "description": "not an event of this workspace"},
    },
    summary="Follow every job event in the workspace live (SSE)",
)
async def stream_workspace(
    ctx: Context,
    principal: Streamer,
    request: Request,
    type: Annotated[
        list[JobTypeText] | None,
        Query(description="job types (repeatable)", max_length=100),
    ] = None,
    status: Annotated[
        list[JobStatus] | None, Query(description="only events moving a job to these statuses")
    ] = None,
    after_id: Annotated[int | None, Query(ge=0, le=LARGEST_EVENT_ID)] = None,
    after_seq: Annotated[
        int | None,
        Query(
            ge=0,
            le=LARGEST_EVENT_ID,
            description="the same as after_id: the `id:` of the last event seen, here an "
            "event id (a job's stream takes after_seq too, where it is the job's seq)",
        ),
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    stream_filter = StreamFilter(
        job_types=frozenset(type or ()),
        statuses=frozenset(s.value for s in status or ()),
    )
    workspace_id = principal.workspace.id
    after, after_field = _after_event(after_id, after_seq)
    resuming = last_event_id is not None or after is not None
    start: StreamPosition | None = None
    if resuming:
        event_id = resume_point(last_event_id, after, largest=LARGEST_EVENT_ID)
        # 410 stream-position-gone when events after it were deleted by retention.
        start = await ctx.jobs.resume_position(workspace_id, event_id)
        if start is None:
            field = "Last-Event-ID" if last_event_id is not None else after_field
            raise invalid_resume_point(
                field,
                f"{field} is not an event of this workspace",
                "no such event in this workspace",
            )
    return event_stream(ctx, _workspace_events(ctx, principal, request, stream_filter, start))


async def _workspace_events(
    ctx: ApiContext,
    principal: Principal,
    request: Request,
    stream_filter: StreamFilter,
    start: StreamPosition | None,
) -> AsyncGenerator[bytes, None]:
    """The workspace's events after `start` (None: from now on), in position order.

    Positions order events so that none can ever commit behind one already passed on
    (see `StreamPosition`), so resuming after an event's position is exact: the stream
    sends each event once, and the events after the client's Last-Event-ID are exactly
    those it has not seen."""
    workspace_id = principal.workspace.id
    credentials = Recheck(request, ctx, principal)

    with ctx.hub.subscribe(workspace_id, stream_filter) as subscription:
        await ctx.hub.start_feed(workspace_id)  # before the replay: nothing falls between
        position = start if start is not None else await ctx.jobs.current_position(workspace_id)

        async def catch_up() -> AsyncIterator[bytes]:
            nonlocal position
            while True:
                page = await ctx.jobs.workspace_events_after(
                    workspace_id, position, limit=REPLAY_PAGE
                )
                frames = [sse(e, stream_id=e.id) for e in page.events if stream_filter.matches(e)]
                position = max(position, page.reached)
                if frames:
                    yield b"".join(frames)
                if page.held:
                    ctx.hub.look_again(workspace_id)
                if not page.full:
                    return

        yield b"retry: 3000\n\n"
        if start is None:
            # Where the stream starts, as an id with no event: a client that loses the
            # connection before its first event resumes from here, not from "now".
            yield f"id: {position.id}\n\n".encode()
        async for chunk in catch_up():
            yield chunk
        async for batch in live_batches(ctx, subscription, credentials):
            if isinstance(batch, bytes):
                yield batch
            elif batch is CATCH_UP:
                async for chunk in catch_up():
                    yield chunk
            else:
                frames = []
                for event in batch:
                    if event.position > position:
                        position = event.position
                        frames.append(sse(event, stream_id=event.id))
                if frames:
                    yield b"".join(frames)
