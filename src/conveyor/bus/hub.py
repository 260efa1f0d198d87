"""The event hub: one per server process, fanning committed events out to every stream
open in that process.

Feeding it:
* SQLite: the store hands over each transaction's events as it commits (`deliver`); one
  writer commits events in id order.
* PostgreSQL: the LISTEN connection hands over compact notices (job, seq range)
  (`announce`). For job streams the hub fetches the announced events in one query per
  batch of notices. For workspace streams it keeps one feed per workspace being watched:
  a position in (tx, id) order that advances only past events no older transaction can
  still commit behind (see `StreamPosition`), with one query per workspace per batch of
  notices — never a query per stream, and none while the workspace is quiet (while events
  are held back behind an older transaction, the feed looks again after 10 ms, then less
  often, down to every 0.5 s).

Each subscription has a bounded buffer. A stream whose client reads too slowly to keep
up is dropped with a reason rather than allowed to grow without limit; its client
resumes from the last event it saw (the database has every event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from conveyor.domain.backoff import Backoff
from conveyor.domain.events import Event, StreamPosition, WorkspaceEventsPage
from conveyor.domain.status import STATUS_OF_EVENT

log = logging.getLogger("conveyor.bus")


@dataclass(frozen=True, slots=True)
class EventNotice:
    """Events first_seq..last_seq of one job were committed."""

    workspace_id: UUID
    job_id: UUID
    first_seq: int
    last_seq: int


FetchRanges = Callable[[Sequence[tuple[UUID, int, int]]], Awaitable[list[Event]]]
FetchWorkspaceEvents = Callable[[UUID, StreamPosition, int], Awaitable[WorkspaceEventsPage]]
CurrentPosition = Callable[[UUID], Awaitable[StreamPosition]]

FEED_PAGE = 1000
FEED_RETRY_SECONDS = 1.0
"""After a failed read, how long the hub waits before reading again."""
HELD_RECHECK_SECONDS = (0.01, 0.5)
"""How soon a feed looks again for events held back by an older running transaction:
the first delay, doubling up to the second."""


@dataclass(frozen=True, slots=True)
class StreamFilter:
    job_id: UUID | None = None
    job_types: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()

    def matches(self, event: Event) -> bool:
        if self.job_id is not None and event.job_id != self.job_id:
            return False
        if self.job_types and event.job_type not in self.job_types:
            return False
        return not self.statuses or STATUS_OF_EVENT.get(event.type) in self.statuses


class Subscription:
    def __init__(
        self, hub: EventHub, workspace_id: UUID, stream_filter: StreamFilter, capacity: int
    ) -> None:
        self._hub = hub
        self.workspace_id = workspace_id
        self.filter = stream_filter
        self.capacity = capacity
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.dropped: str | None = None
        self.closing = False
        """The server is stopping: end the stream (its client reconnects elsewhere)."""
        self.catch_up_needed = False
        """Set when notices may have been lost (the listener reconnected): the stream
        must read what it missed from the database."""

    def offer(self, event: Event) -> None:
        if self.dropped is not None or not self.filter.matches(event):
            return
        if len(self._queue) >= self.capacity:
            self.dropped = (
                f"the client fell more than {self.capacity} events behind; "
                "reconnect with Last-Event-ID to resume"
            )
            self._queue.clear()
        else:
            self._queue.append(event)
        self._ready.set()

    def end(self) -> None:
        self.closing = True
        self._ready.set()

    def request_catch_up(self) -> None:
        self.catch_up_needed = True
        self._ready.set()

    async def next_batch(self, wait_seconds: float) -> list[Event]:
        """The events buffered so far, waiting up to `wait_seconds` for the first one."""
        if not (self._queue or self.dropped or self.catch_up_needed or self.closing):
            # asyncio.timeout, not wait_for: wait_for wraps the wait in a new Task, which
            # with a thousand streams on one job is a thousand Tasks per event.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_seconds):
                    await self._ready.wait()
        self._ready.clear()
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class EventHub:
    def __init__(
        self,
        *,
        fetch_ranges: FetchRanges | None = None,
        fetch_workspace_events: FetchWorkspaceEvents | None = None,
        current_position: CurrentPosition | None = None,
        capacity: int = 1000,
    ) -> None:
        self._fetch_ranges = fetch_ranges
        self._fetch_workspace_events = fetch_workspace_events
        self._current_position = current_position
        self.capacity = capacity
        self._by_job: dict[UUID, set[Subscription]] = {}
        self._by_workspace: dict[UUID, set[Subscription]] = {}
        self._pending: dict[UUID, tuple[int, int]] = {}
        self._feeds: dict[UUID, StreamPosition | None] = {}
        """Per watched workspace (PostgreSQL): how far its workspace streams have been fed;
        None until the first stream has fixed the starting point (`start_feed`)."""
        self._stale_feeds: set[UUID] = set()
        self._held_feeds: set[UUID] = set()
        self._restarting_feeds: set[UUID] = set()
        """Feeds restarted after notices may have been lost, whose streams must catch up
        once the feed has its new starting point."""
        self._woken = asyncio.Event()
        self._fetching: asyncio.Task[None] | None = None
        self._closed = False
        self.fetches = 0
        """Database reads made to resolve notices (for tests and metrics)."""

    @property
    def feeds_workspaces(self) -> bool:
        """Workspace streams are fed from the database in position order (PostgreSQL),
        rather than handed each commit's events (SQLite)."""
        return self._fetch_workspace_events is not None

    @property
    def subscriptions(self) -> int:
        return sum(len(subs) for subs in self._by_job.values()) + sum(
            len(subs) for subs in self._by_workspace.values()
        )

    def subscribe(self, workspace_id: UUID, stream_filter: StreamFilter) -> Subscription:
        subscription = Subscription(self, workspace_id, stream_filter, self.capacity)
        if self._closed:
            subscription.end()
        if stream_filter.job_id is not None:
            self._by_job.setdefault(stream_filter.job_id, set()).add(subscription)
        else:
            self._by_workspace.setdefault(workspace_id, set()).add(subscription)
            if self.feeds_workspaces:
                self._feeds.setdefault(workspace_id, None)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        job_id = subscription.filter.job_id
        index = self._by_job if job_id is not None else self._by_workspace
        key = job_id if job_id is not None else subscription.workspace_id
        subscribers = index.get(key)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del index[key]
            if job_id is None:
                self._feeds.pop(key, None)
                self._stale_feeds.discard(key)
                self._held_feeds.discard(key)
                self._restarting_feeds.discard(key)

    async def start_feed(self, workspace_id: UUID) -> None:
        """Called by a workspace stream after it subscribed and before it replays: the
        workspace's feed starts no later than the replay ends, so no event falls between."""
        if workspace_id not in self._feeds or self._feeds[workspace_id] is not None:
            return  # not fed from the database, or already started
        assert self._current_position is not None
        start = await self._current_position(workspace_id)
        if workspace_id in self._by_workspace and self._feeds.get(workspace_id) is None:
            self._feeds[workspace_id] = start

    def look_again(self, workspace_id: UUID) -> None:
        """A stream's replay found events held back by an older transaction: the feed
        keeps looking until they can be passed on."""
        if self.feeds_workspaces and workspace_id in self._feeds:
            self._held_feeds.add(workspace_id)
            self._run_fetches()

    def deliver(self, committed: Sequence[Event]) -> None:
        """Hand committed events (in commit order) to every stream that wants them."""
        for event in committed:
            for subscription in tuple(self._by_job.get(event.job_id, ())):
                subscription.offer(event)
            for subscription in tuple(self._by_workspace.get(event.workspace_id, ())):
                subscription.offer(event)

    def announce(self, notices: Sequence[EventNotice]) -> None:
        """PostgreSQL said these events were committed: fetch the ones streamed here."""
        for notice in notices:
            if notice.workspace_id in self._feeds:
                self._stale_feeds.add(notice.workspace_id)
            if notice.job_id not in self._by_job:
                continue
            first, last = self._pending.get(notice.job_id, (notice.first_seq, notice.last_seq))
            self._pending[notice.job_id] = (
                min(first, notice.first_seq),
                max(last, notice.last_seq),
            )
        if self._pending or self._stale_feeds:
            self._run_fetches()

    def _run_fetches(self) -> None:
        self._woken.set()
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.create_task(self._fetch_pending(), name="event-hub-fetch")

    async def _fetch_pending(self) -> None:
        # Held events are looked for again after a delay that doubles while they stay held.
        recheck = Backoff(*HELD_RECHECK_SECONDS, jitter=lambda: 1.0)
        delay = recheck.next()
        while self._pending or self._stale_feeds or self._held_feeds:
            if not (self._pending or self._stale_feeds):
                # Only held events are left: look again after a while, or when woken.
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._woken.wait()
                delay = recheck.next()
                self._stale_feeds |= self._held_feeds
            try:
                await self._fetch_job_events()
                if await self._advance_feeds():
                    recheck.reset()
                    delay = recheck.next()
            except Exception as error:
                log.warning("could not fetch announced events (%s); streams will catch up", error)
                self._pending.clear()
                self.catch_up_all()
                await asyncio.sleep(FEED_RETRY_SECONDS)  # the feeds restart once it answers

    async def _fetch_job_events(self) -> None:
        if not self._pending:
            return
        assert self._fetch_ranges is not None, "announce needs a way to fetch events"
        ranges = [(job_id, first, last) for job_id, (first, last) in self._pending.items()]
        self._pending.clear()
        self.fetches += 1
        fetched = await self._fetch_ranges(ranges)
        for event in sorted(fetched, key=lambda event: event.id):
            for subscription in tuple(self._by_job.get(event.job_id, ())):
                subscription.offer(event)

    async def _advance_feeds(self) -> bool:
        """Feed each stale workspace's streams what can be passed on; True if any moved."""
        moved = False
        stale, self._stale_feeds = self._stale_feeds, set()
        for workspace_id in stale:
            assert self._fetch_workspace_events is not None
            if workspace_id in self._restarting_feeds:
                # Notices may have been lost: start from where the database stands, then
                # let the streams catch up from their own positions to there.
                await self.start_feed(workspace_id)
                self._restarting_feeds.discard(workspace_id)
                for subscription in tuple(self._by_workspace.get(workspace_id, ())):
                    subscription.request_catch_up()
                continue
            while (position := self._feeds.get(workspace_id)) is not None:
                self.fetches += 1
                page = await self._fetch_workspace_events(
                    workspace_id, position, min(FEED_PAGE, self.capacity)
                )
                if self._feeds.get(workspace_id) != position:
                    break  # unwatched (or restarted) meanwhile
                self._feeds[workspace_id] = page.reached
                for event in page.events:
                    for subscription in tuple(self._by_workspace.get(workspace_id, ())):
                        subscription.offer(event)
                moved = moved or bool(page.events)
                if page.held:
                    self._held_feeds.add(workspace_id)
                else:
                    self._held_feeds.discard(workspace_id)
                if not page.full:
                    break
        return moved

    def end_all_streams(self) -> None:
        """The server is stopping: every stream ends now, so that connections close and
        clients reconnect (to this server once it is back, or to another)."""
        self._closed = True
        for index in (self._by_job, self._by_workspace):
            for subscribers in index.values():
                for subscription in subscribers:
                    subscription.end()

    def catch_up_all(self) -> None:
        """Notices may have been lost: every stream reads what it missed from the database.
        Job streams catch up now. Workspace feeds restart from where the database stands
        and only then ask their streams to catch up (so nothing falls between), rather than
        replaying a backlog into every stream's buffer at once."""
        for subscribers in self._by_job.values():
            for subscription in subscribers:
                subscription.request_catch_up()
        self._held_feeds.clear()
        for workspace_id in self._feeds:
            self._feeds[workspace_id] = None
        self._restarting_feeds = set(self._feeds)
        self._stale_feeds = set(self._feeds)
        if self._stale_feeds:
            self._run_fetches()

    async def close(self) -> None:
        if self._fetching is not None:
            self._fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetching
