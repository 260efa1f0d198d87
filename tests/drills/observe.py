"""What a drill looks at from outside the processes it kills: the database (plain SQL reads),
the handlers' side file, and event streams read over HTTP like any client would, resuming
with `Last-Event-ID` whenever the connection breaks.

The checks raise AssertionError naming the job, the run or the event that broke a
guarantee, so that a failing drill says what went wrong rather than that something did.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from conveyor.domain.jobs import JobStatus, can_transition
from conveyor.store.urls import DatabaseURL
from tests.worker.conftest import eventually

STATUS_OF_EVENT = {
    "job.created": JobStatus.PENDING,
    "job.queued": JobStatus.QUEUED,
    "job.started": JobStatus.RUNNING,
    "job.completed": JobStatus.COMPLETED,
    "job.failed": JobStatus.FAILED,
    "job.cancelled": JobStatus.CANCELLED,
}
"""The events that move a job to a status; the others (progress, lease expiry, custom
events) leave it where it is."""


# -- the database, read with plain SQL ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    status: str
    attempt: int
    result: Any
    idempotency_key: str | None
    last_event_seq: int


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    job_id: str
    seq: int
    type: str


async def _query(url: DatabaseURL, sql: str, *args: object) -> list[dict[str, Any]]:
    if url.kind == "sqlite":

        def read() -> list[dict[str, Any]]:
            uri = f"file:{url.sqlite_path}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
                connection.row_factory = sqlite3.Row
                rows = connection.execute(sql.replace("$1", "?"), args).fetchall()
            return [dict(row) for row in rows]

        return await asyncio.to_thread(read)
    connection = await asyncpg.connect(url.url)
    try:
        return [dict(row) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def workspace_id(url: DatabaseURL, slug: str) -> str:
    rows = await _query(url, "SELECT id FROM workspaces WHERE slug = $1", slug)
    assert rows, f"no workspace {slug!r} in the database"
    return str(rows[0]["id"])


async def read_jobs(url: DatabaseURL, workspace: str) -> dict[str, JobRow]:
    rows = await _query(
        url,
        "SELECT id, status, attempt, result, idempotency_key, last_event_seq FROM jobs "
        "WHERE workspace_id = $1",
        await _workspace_parameter(url, workspace),
    )
    jobs = {}
    for row in rows:
        result = row["result"]
        if isinstance(result, str | bytes):
            result = orjson.loads(result)
        job = JobRow(
            id=str(row["id"]),
            status=str(row["status"]),
            attempt=int(row["attempt"]),
            result=result,
            idempotency_key=row["idempotency_key"],
            last_event_seq=int(row["last_event_seq"]),
        )
        jobs[job.id] = job
    return jobs


async def read_events(url: DatabaseURL, workspace: str) -> list[EventRow]:
    """Every event of the workspace, in id order."""
    rows = await _query(
        url,
        "SELECT id, job_id, seq, type FROM events WHERE workspace_id = $1 ORDER BY id",
        await _workspace_parameter(url, workspace),
    )
    return [
        EventRow(int(row["id"]), str(row["job_id"]), int(row["seq"]), str(row["type"]))
        for row in rows
    ]


async def _workspace_parameter(url: DatabaseURL, slug: str) -> object:
    identifier = await workspace_id(url, slug)
    if url.kind == "postgresql":
        from uuid import UUID

        return UUID(identifier)
    return identifier


# -- the handlers' side file ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Note:
    """One line of the side file: a run of a job began (`start`) or finished its work
    (`end`)."""

    line: int
    word: str
    job: str
    attempt: int
    lease: str
    worker: str


def read_side_file(path: Path) -> list[Note]:
    if not path.exists():
        return []
    notes = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        word, job, attempt, lease, worker = line.split(" ")
        notes.append(Note(number, word, job, int(attempt), lease, worker))
    return notes


def runs_by_job(notes: Iterable[Note]) -> dict[str, list[Note]]:
    found: dict[str, list[Note]] = defaultdict(list)
    for note in notes:
        found[note.job].append(note)
    return found


def started_not_ended(notes: list[Note], worker: str | None = None) -> set[str]:
    """Jobs with a run (of `worker`, if given) that began and has not finished."""
    ended = {(note.job, note.lease) for note in notes if note.word == "end"}
    return {
        note.job
        for note in notes
        if note.word == "start"
        and (note.job, note.lease) not in ended
        and (worker is None or note.worker == worker)
    }


# -- the guarantees -------------------------------------------------------------------------


def check_acknowledged_exist(acknowledged: Iterable[str], jobs: dict[str, JobRow]) -> None:
    lost = sorted(set(acknowledged) - set(jobs))
    assert not lost, f"{len(lost)} jobs were acknowledged (2xx) but are not in the database: {lost}"


def check_completed_exactly_once(
    expected: Iterable[str], jobs: dict[str, JobRow], events: list[EventRow], notes: list[Note]
) -> None:
    """Every expected job is COMPLETED with one `job.completed` event; its result came from
    a run that finished its work (an `end` line for that lease), that run was the job's
    last, and no lease ran twice."""
    completions = Counter(event.job_id for event in events if event.type == "job.completed")
    runs = runs_by_job(notes)
    for job_id in sorted(expected):
        job = jobs.get(job_id)
        assert job is not None, f"job {job_id} is not in the database"
        assert job.status == "COMPLETED", f"job {job_id} ended {job.status}, not COMPLETED"
        assert completions[job_id] == 1, (
            f"job {job_id} has {completions[job_id]} job.completed events"
        )
        assert isinstance(job.result, dict), f"job {job_id} has no result: {job.result!r}"
        lease = job.result["lease"]
        notes_of_job = runs[job_id]
        starts = Counter(note.lease for note in notes_of_job if note.word == "start")
        twice = [held for held, count in starts.items() if count > 1]
        assert not twice, f"job {job_id}: lease {twice} ran more than once"
        ends = [note for note in notes_of_job if note.word == "end" and note.lease == lease]
        assert ends, (
            f"job {job_id}: the stored result names lease {lease} (attempt "
            f"{job.result['attempt']}), whose run never finished its work: {notes_of_job}"
        )
        later = [note for note in notes_of_job if note.word == "start" and note.line > ends[0].line]
        assert not later, (
            f"job {job_id} ran again after the run whose result was stored had finished: {later}"
        )
        assert job.attempt == job.result["attempt"], (
            f"job {job_id} is on attempt {job.attempt} but its result is from attempt "
            f"{job.result['attempt']}"
        )


def check_events_in_order(jobs: dict[str, JobRow], events: list[EventRow]) -> None:
    """Each job's events are numbered 1..n without a gap or a repeat, n is the job's
    `last_event_seq`, and in seq order they move the job only along the transition table,
    starting with `job.created` and ending with the one event of its terminal status."""
    by_job: dict[str, list[EventRow]] = defaultdict(list)
    for event in events:
        by_job[event.job_id].append(event)
    orphans = sorted(set(by_job) - set(jobs))
    assert not orphans, f"events of jobs that do not exist: {orphans}"
    for job_id, job in jobs.items():
        ordered = sorted(by_job[job_id], key=lambda event: event.seq)
        seqs = [event.seq for event in ordered]
        assert seqs == list(range(1, len(seqs) + 1)), f"job {job_id}: event seqs {seqs}"
        assert len(seqs) == job.last_event_seq, (
            f"job {job_id}: {len(seqs)} events but last_event_seq {job.last_event_seq}"
        )
        assert [event.id for event in ordered] == sorted(event.id for event in ordered), (
            f"job {job_id}: event ids do not rise with seq: {[(e.seq, e.id) for e in ordered]}"
        )
        assert ordered, f"job {job_id} has no events"
        assert ordered[0].type == "job.created", f"job {job_id}: first event {ordered[0].type}"
        status = JobStatus.PENDING
        for event in ordered[1:]:
            target = STATUS_OF_EVENT.get(event.type)
            if target is None:
                assert not status.is_terminal, (
                    f"job {job_id}: {event.type} (seq {event.seq}) after it was {status.value}"
                )
                continue
            assert can_transition(status, target, by_system=True), (
                f"job {job_id}: {event.type} (seq {event.seq}) moves it "
                f"{status.value} -> {target.value}: {[e.type for e in ordered]}"
            )
            status = target
        assert status.value == job.status, (
            f"job {job_id}: its events end at {status.value}, the row says {job.status}"
        )


def check_side_file_names_only_known_jobs(notes: list[Note], jobs: dict[str, JobRow]) -> None:
    unknown = sorted({note.job for note in notes} - set(jobs))
    assert not unknown, f"handlers ran jobs the database does not have: {unknown}"


# -- event streams, read like a client does -------------------------------------------------


@dataclass
class Frame:
    id: int
    event: str
    data: dict[str, Any]


@dataclass
class Follower:
    """An SSE client that follows `path` until stopped (or, on a job's stream, until
    `stream.complete`), resuming with `Last-Event-ID` after every break, as EventSource
    does. `frames` holds every event received, in order; `reconnects` how often it had to
    resume; `refusals` the answers other than 200 it got while the server was away."""

    base_url: str
    key: str
    path: str
    frames: list[Frame] = field(default_factory=list)
    last_id: str | None = None
    reconnects: int = 0
    refusals: list[int] = field(default_factory=list)
    breaks: list[str] = field(default_factory=list)
    complete: dict[str, Any] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Follower:
        self._task = asyncio.create_task(self._follow())
        await asyncio.wait_for(self.started.wait(), 30)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def ids(self) -> list[int]:
        return [frame.id for frame in self.frames]

    async def finished(self) -> None:
        """Until a job's stream has sent `stream.complete`."""
        await self._ended.wait()

    async def _follow(self) -> None:
        try:
            await self._resume_until_complete()
        finally:
            self._ended.set()

    async def _resume_until_complete(self) -> None:
        timeout = httpx.Timeout(10.0, read=30.0)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout) as http:
            while self.complete is None:
                headers = {"Authorization": f"Bearer {self.key}"}
                if self.last_id is not None:
                    headers["Last-Event-ID"] = self.last_id
                try:
                    async with http.stream("GET", self.path, headers=headers) as response:
                        if response.status_code != 200:
                            self.refusals.append(response.status_code)
                        else:
                            await self._read(response)
                            self.breaks.append("the server ended the stream")
                except (httpx.TransportError, httpx.RemoteProtocolError) as error:
                    self.breaks.append(f"{type(error).__name__}: {error}")
                if self.complete is None:
                    self.reconnects += 1
                    await asyncio.sleep(0.2)

    async def _read(self, response: httpx.Response) -> None:
        event_id: str | None = None
        event = "message"
        data: list[str] = []
        async for line in response.aiter_lines():
            if line == "":
                if event_id is not None:
                    self.last_id = event_id
                if data:
                    payload = orjson.loads("\n".join(data))
                    if event == "stream.complete":
                        self.complete = payload
                        return
                    if event_id is not None:
                        self.frames.append(Frame(int(event_id), event, payload))
                event_id, event, data = None, "message", []
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "retry":
                self.started.set()
            elif name == "id":
                event_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)


async def caught_up(follower: Follower, url: DatabaseURL, workspace: str) -> None:
    """Wait until the workspace stream has received every event the database has."""

    missing: list[int] = []

    async def every_event_received() -> bool:
        nonlocal missing
        wanted = {event.id for event in await read_events(url, workspace)}
        missing = sorted(wanted - set(follower.ids()))
        return not missing

    try:
        await eventually(every_event_received, within=30, what="the workspace stream")
    except AssertionError:
        raise AssertionError(
            f"the workspace stream never sent {len(missing)} events of the database "
            f"({missing[:20]}…); it received {len(follower.frames)} events, the last "
            f"{follower.ids()[-5:]}, resumed {follower.reconnects} times, last id "
            f"{follower.last_id}, refusals {follower.refusals}, breaks {follower.breaks}"
        ) from None


def check_workspace_stream(follower: Follower, events: list[EventRow]) -> None:
    """The stream, opened before the first job, got every event of the workspace once, and
    each job's events in seq order, across every resume."""
    received = follower.ids()
    repeated = sorted(event_id for event_id, n in Counter(received).items() if n > 1)
    assert not repeated, (
        f"the workspace stream sent events {repeated} more than once "
        f"({follower.reconnects} resumes; breaks: {follower.breaks})"
    )
    stored = {event.id: event for event in events}
    missing = sorted(set(stored) - set(received))
    assert not missing, (
        f"the workspace stream never sent events {missing} "
        f"({follower.reconnects} resumes; breaks: {follower.breaks})"
    )
    unknown = sorted(set(received) - set(stored))
    assert not unknown, f"the workspace stream sent events the database does not have: {unknown}"
    last_seq: dict[str, int] = {}
    for frame in follower.frames:
        event = stored[frame.id]
        assert (frame.data["job_id"], frame.data["seq"], frame.data["type"]) == (
            event.job_id,
            event.seq,
            event.type,
        ), f"the stream's event {frame.id} says {frame.data}, the database {event}"
        assert event.seq > last_seq.get(event.job_id, 0), (
            f"job {event.job_id}: the stream sent seq {event.seq} after seq "
            f"{last_seq[event.job_id]}"
        )
        last_seq[event.job_id] = event.seq


def check_job_stream(follower: Follower, job: JobRow) -> None:
    """The job's stream sent seqs 1..n once each, in order, then `stream.complete`."""
    seqs = follower.ids()
    assert seqs == list(range(1, job.last_event_seq + 1)), (
        f"job {job.id}'s stream sent seqs {seqs}, the database has 1..{job.last_event_seq} "
        f"({follower.reconnects} resumes; breaks: {follower.breaks})"
    )
    assert follower.complete == {"job_id": job.id, "status": job.status}, (
        f"job {job.id}'s stream ended with {follower.complete}"
    )
