"""The worker: claims jobs, runs their handlers, keeps their leases alive, reports back.

* Claims long-poll for as many jobs as there are free slots (one request for many jobs).
* Every running job's lease is extended on a heartbeat; a heartbeat or report refused
  because the lease is gone (the job was cancelled, or taken back) cancels the handler.
* Completions are group-committed: whatever finished while the previous batch was on its
  way goes out in the next one, so a busy worker sends one request for many jobs while a
  quiet one adds no delay.
* When Conveyor is unreachable, claims back off and reports are retried for as long as
  the lease could still be valid; nothing is reported twice by mistake, because every
  report is fenced by the lease.
* `stop()` (SIGTERM in `conveyor worker`) stops claiming, lets running jobs finish for a
  grace period, then cancels the rest and hands their jobs back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from conveyor import logs
from conveyor.domain.jobs import ERROR_MAX_CHARS, ClaimedJob
from conveyor.serialization import dumps
from conveyor.worker.backend import (
    BackendUnavailable,
    CompletionReport,
    LeaseGone,
    ReportRejected,
    ReportTooLarge,
    WorkerBackend,
)
from conveyor.worker.context import JobContext, SyncJobContext
from conveyor.worker.handlers import Fail, Handler, Handlers

log = logging.getLogger("conveyor.worker")
T = TypeVar("T")

COMPLETION_BATCH = 500
COMPLETION_BYTES = 512 * 1024
"""A completion request stays under half the server's default body limit (1 MiB)."""
CLAIM_SETTLE_SECONDS = 2.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Backoff:
    """Exponential backoff with jitter, for reconnecting."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next * (0.5 + random.random() / 2)
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


@dataclass
class WorkerOptions:
    concurrency: int = 4
    lease_seconds: float = 30.0
    heartbeat_seconds: float | None = None
    """Default: a third of the lease, so two heartbeats may be lost before it runs out."""
    claim_wait_seconds: float = 10.0
    shutdown_grace_seconds: float = 30.0
    worker_id: str = field(default_factory=default_worker_id)
    types: list[str] | None = None
    """Job types to claim; default: those with a handler."""

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3


@dataclass
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    released: int = 0


@dataclass
class Pending:
    """A completion waiting for the next batch; its job keeps its slot until it is settled."""

    report: CompletionReport
    run: JobRun
    size: int


def storable_text(text: str, limit: int) -> str:
    """Text the API will take: no NUL, no lone surrogates, at most `limit` characters."""
    cleaned = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class JobRun:
    """One claimed job in this worker: its lease, its handler's task, its reports."""

    def __init__(self, job: ClaimedJob, worker: Worker) -> None:
        self.job = job
        self.worker_id = worker.options.worker_id
        self._worker = worker
        self.lost = asyncio.Event()
        self.lost_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.reporting = False
        """The handler has finished and its completion is on its way: the job keeps its
        slot (and its heartbeats) until the completion is settled."""
        self.lease_deadline = time.monotonic() + worker.options.lease_seconds

    def lose(self, reason: str) -> None:
        """The lease is gone: stop the handler; nothing more will be reported."""
        if self.lost.is_set():
            return
        self.lost_reason = reason
        self.lost.set()
        self._worker.stats.lost += 1
        log.info("job %s: %s; stopping its handler", self.job.id, reason)
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def report(self, call: Callable[[WorkerBackend], Awaitable[T]]) -> T:
        """Send a report, riding out outages while the lease may still hold."""
        backoff = Backoff()
        while True:
            if self.lost.is_set():
                raise LeaseGone(self.lost_reason or "lease gone")
            try:
                return await call(self._worker.backend)
            except LeaseGone as gone:
                self.lose(gone.reason)
                raise
            except BackendUnavailable:
                if time.monotonic() > self.lease_deadline:
                    raise
                await asyncio.sleep(backoff.next())


class Worker:
    def __init__(
        self,
        backend: WorkerBackend,
        handlers: Handlers,
        options: WorkerOptions | None = None,
        *,
        allow_command_jobs: bool = False,
    ) -> None:
        self.backend = backend
        self.options = options or WorkerOptions()
        self.handlers = Handlers()
        self.handlers.merge(handlers)
        if allow_command_jobs:
            from conveyor.worker.command import COMMAND_JOB_TYPE, run_command

            self.handlers.add(COMMAND_JOB_TYPE, run_command)
        self.types = self.options.types or self.handlers.types
        self.stats = WorkerStats()
        self._runs: dict[UUID, JobRun] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._completions: list[Pending] = []
        self._completions_ready = asyncio.Event()
        self._threads = ThreadPoolExecutor(
            max_workers=self.options.concurrency, thread_name_prefix="conveyor-job"
        )
        self._busy_threads = 0
        self._thread_count = threading.Lock()

    @property
    def running(self) -> int:
        return len(self._runs)

    def stop(self) -> None:
        """Stop claiming; running jobs get the grace period to finish."""
        self._stopping.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        if not self.types:
            raise ValueError("this worker has no handlers: nothing to claim")
        loop = asyncio.get_running_loop()
        self._loop = loop
        if handle_signals:
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, self.stop)
        log.info(
            "worker %s: %d slots for %s",
            self.options.worker_id,
            self.options.concurrency,
            self.types,
        )
        heartbeats = asyncio.create_task(self._heartbeat_forever(), name="worker-heartbeats")
        flusher = asyncio.create_task(self._flush_completions_forever(), name="worker-completions")
        try:
            await self._claim_until_stopped()
        finally:
            await self._wind_down()
            heartbeats.cancel()
            flusher.cancel()
            for task in (heartbeats, flusher):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._threads.shutdown(wait=False, cancel_futures=True)
            if handle_signals:
                for number in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(number)
            log.info("worker %s stopped", self.options.worker_id)

    # -- claiming -------------------------------------------------------------------------

    async def _claim_until_stopped(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            # A sync handler whose job was cancelled keeps its thread until it returns:
            # that thread is not free, even though its job no longer is ours.
            free = self.options.concurrency - max(len(self._runs), self._busy_threads)
            if free <= 0:
                self._slot_freed.clear()
                await _first_of(self._slot_freed.wait(), self._stopping.wait())
                continue
            claim = asyncio.ensure_future(
                self.backend.claim(
                    self.types,
                    limit=free,
                    lease_seconds=self.options.lease_seconds,
                    wait_seconds=self.options.claim_wait_seconds,
                    worker_id=self.options.worker_id,
                )
            )
            stopping = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({claim, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not claim.done():
                # Stopping mid-claim. The claim may already have taken jobs whose answer is
                # on its way: give it a moment and hand back what it brings. A long-poll
                # still waiting has taken nothing, and the server checks that its caller
                # is still there before it claims.
                await asyncio.wait({claim}, timeout=CLAIM_SETTLE_SECONDS)
                if not claim.done():
                    claim.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._hand_back(await claim)
                return
            try:
                jobs = claim.result()
            except BackendUnavailable as error:
                delay = backoff.next()
                log.warning("cannot claim (%s); trying again in %.1fs", error, delay)
                await _first_of(asyncio.sleep(delay), self._stopping.wait())
                continue
            except Exception:
                delay = backoff.next()
                log.exception("claim failed; trying again in %.1fs", delay)
                await _first_of(asyncio.sleep(delay), self._stopping.wait())
                continue
            backoff.reset()
            for job in jobs:
                self._start(job)

    async def _hand_back(self, jobs: list[ClaimedJob]) -> None:
        await asyncio.gather(*(self._release(JobRun(job, self)) for job in jobs))

    def _start(self, job: ClaimedJob) -> None:
        self.stats.claimed += 1
        run = JobRun(job, self)
        self._runs[job.id] = run
        handler = self.handlers.get(job.type)
        # Straight on the loop, unnamed: asyncio.create_task looks the loop up (a getpid()
        # system call on Python 3.11) and naming costs a UUID's text; the job's id is in
        # its log records (`logs.job_id`) instead.
        run.task = self._loop.create_task(self._execute(run, handler))
        run.task.add_done_callback(lambda _: self._finished(run))

    def _finished(self, run: JobRun) -> None:
        if not run.reporting:
            self._free_slot(run)

    def _free_slot(self, run: JobRun) -> None:
        self._runs.pop(run.job.id, None)
        self._slot_freed.set()

    # -- running a job --------------------------------------------------------------------

    async def _execute(self, run: JobRun, handler: Handler | None) -> None:
        token = logs.job_id.set(str(run.job.id))
        try:
            if handler is None:
                await self._report_failure(run, f"no handler for job type {run.job.type}", False)
                return
            context = JobContext(run)
            try:
                if handler.is_async:
                    result = await handler.function(context)
                else:
                    loop = asyncio.get_running_loop()
                    result = await loop.run_in_executor(
                        self._threads, self._on_thread, handler, SyncJobContext(context, loop)
                    )
            except asyncio.CancelledError:
                if run.lost.is_set():
                    return
                raise
            except LeaseGone:
                return
            except Fail as failure:
                await self._report_failure(run, failure.message, failure.retryable)
                return
            except Exception as error:
                log.exception("job %s (%s) raised", run.job.id, run.job.type)
                await self._report_failure(run, f"{type(error).__name__}: {error}", True)
                return
            try:
                size = len(dumps(result))
            except TypeError as error:
                await self._report_failure(run, f"the result is not JSON: {error}", False)
                return
            self._queue_completion(run, result, size)
        finally:
            logs.job_id.reset(token)

    def _on_thread(self, handler: Handler, context: SyncJobContext) -> Any:
        with self._thread_count:
            self._busy_threads += 1
        try:
            return handler.function(context)
        finally:
            with self._thread_count:
                self._busy_threads -= 1
            self._loop.call_soon_threadsafe(self._slot_freed.set)

    async def _report_failure(self, run: JobRun, error: str, retryable: bool) -> None:
        error = storable_text(error, ERROR_MAX_CHARS)
        try:
            await run.report(
                lambda backend: backend.fail(
                    run.job.id, run.job.lease_id, error, retryable, run.worker_id
                )
            )
            self.stats.failed += 1
        except (LeaseGone, ReportRejected, BackendUnavailable) as refused:
            log.warning("job %s: failure not recorded: %s", run.job.id, refused)

    def _queue_completion(self, run: JobRun, result: Any, size: int) -> None:
        """Hand the completion to the next batch (`_flush_completions_forever`); the batch's
        answer settles it (`_settle`). The handler's task ends here."""
        run.reporting = True
        self._completions.append(
            Pending(CompletionReport(run.job.id, run.job.lease_id, result), run, size)
        )
        self._completions_ready.set()

    def _settle(self, pending: Pending, refused: Exception | None) -> None:
        """What became of one completion: the job's slot is free again, unless the result
        itself was refused and the job still has to be failed."""
        run = pending.run
        if refused is None:
            self.stats.completed += 1
        elif isinstance(refused, LeaseGone):
            run.lose(refused.reason)
            log.warning("job %s: completion refused: %s", run.job.id, refused.reason)
        elif isinstance(refused, ReportRejected):
            # The result itself was refused (too large, say): the job failed, and says why.
            log.warning("job %s: result refused: %s", run.job.id, refused)
            # The run (in `_runs`) holds the task; the job keeps its slot until it is done.
            run.task = asyncio.create_task(
                self._report_failure(run, f"the result was refused: {refused}", False)
            )
            run.task.add_done_callback(lambda _: self._free_slot(run))
            return
        else:
            log.warning("job %s: completion not recorded: %s", run.job.id, refused)
        self._free_slot(run)

    async def _flush_completions_forever(self) -> None:
        while True:
            await self._completions_ready.wait()
            self._completions_ready.clear()
            while self._completions:
                await self._send_completions(self._next_batch())

    def _next_batch(self) -> list[Pending]:
        """As many pending completions as fit in one request (by count and by size)."""
        taken = 0
        size = 0
        for pending in self._completions:
            if taken and (taken == COMPLETION_BATCH or size + pending.size > COMPLETION_BYTES):
                break
            taken += 1
            size += pending.size
        batch = self._completions[:taken]
        del self._completions[:taken]
        return batch

    async def _send_completions(self, batch: list[Pending]) -> None:
        backoff = Backoff()
        while True:
            try:
                outcomes = await self.backend.complete_many(
                    [pending.report for pending in batch], self.options.worker_id
                )
            except BackendUnavailable as error:
                if all(time.monotonic() > pending.run.lease_deadline for pending in batch):
                    for pending in batch:
                        self._settle(pending, error)
                    return
                await asyncio.sleep(backoff.next())
                continue
            except ReportTooLarge as error:
                if len(batch) == 1:
                    self._settle(batch[0], error)
                    return
                half = len(batch) // 2  # the server takes less than we sent: split
                await self._send_completions(batch[:half])
                await self._send_completions(batch[half:])
                return
            except Exception as error:
                log.exception("sending completions failed")
                for pending in batch:
                    self._settle(pending, ReportRejected(str(error)))
                return
            for pending, outcome in zip(batch, outcomes, strict=True):
                self._settle(pending, outcome)
            return

    # -- leases ---------------------------------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        """A round every heartbeat interval, on schedule: a slow round does not push the
        next one late (each heartbeat gets the interval, at most, to answer)."""
        interval = self.options.heartbeat_interval
        next_round = time.monotonic() + interval
        while True:
            await asyncio.sleep(max(0.0, next_round - time.monotonic()))
            next_round += interval
            runs = [run for run in self._runs.values() if not run.lost.is_set()]
            await asyncio.gather(*(self._heartbeat(run, interval) for run in runs))

    async def _heartbeat(self, run: JobRun, within: float) -> None:
        try:
            sent = time.monotonic()
            await asyncio.wait_for(
                self.backend.heartbeat(
                    run.job.id, run.job.lease_id, self.options.lease_seconds, run.worker_id
                ),
                within,
            )
            run.lease_deadline = sent + self.options.lease_seconds
        except TimeoutError:
            log.warning("job %s: heartbeat took longer than %.1fs", run.job.id, within)
        except LeaseGone as gone:
            run.lose(gone.reason)
        except (BackendUnavailable, ReportRejected) as error:
            log.warning("job %s: heartbeat failed (%s)", run.job.id, error)
        except Exception:
            log.exception("job %s: heartbeat failed", run.job.id)

    # -- shutting down --------------------------------------------------------------------

    async def _wind_down(self) -> None:
        grace_ends = time.monotonic() + self.options.shutdown_grace_seconds
        runs = [run for run in self._runs.values() if not run.reporting]
        tasks = [run.task for run in runs if run.task is not None]
        if tasks:
            log.info(
                "stopping: %d jobs running, waiting up to %.0fs",
                len(tasks),
                self.options.shutdown_grace_seconds,
            )
            _, pending = await asyncio.wait(tasks, timeout=self.options.shutdown_grace_seconds)
            unfinished = [run for run in runs if run.task in pending]
            for run in unfinished:
                assert run.task is not None
                run.task.cancel()
            await asyncio.gather(
                *(run.task for run in unfinished if run.task), return_exceptions=True
            )
            await asyncio.gather(
                *(self._release(run) for run in unfinished if not run.lost.is_set())
            )
        # Jobs that finished have their completions on the way (the flusher runs until
        # `run` returns): wait for them to be settled, within what is left of the grace.
        while self._runs and (left := grace_ends - time.monotonic()) > 0:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), left)

    async def _release(self, run: JobRun) -> None:
        try:
            await self.backend.release(run.job.id, run.job.lease_id, run.worker_id)
            self.stats.released += 1
            log.info("job %s handed back to the queue", run.job.id)
        except Exception as error:
            log.warning(
                "job %s could not be handed back (%s); its lease will expire", run.job.id, error
            )


async def _first_of(*awaitables: Awaitable[Any]) -> None:
    """Wait until the first of these finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
