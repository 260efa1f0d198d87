"""The worker: claims jobs and keeps its slots full, running each job through its parts.

* The claim loop (here) long-polls for as many jobs as there are free slots (one request
  for many jobs) and starts a `JobRun` (run.py) for each.
* The executor (executor.py) runs a job's handler: async handlers as tasks, plain
  functions on threads.
* The completion batcher (completer.py) group-commits results; each outcome comes back
  here to be settled (the job's slot is freed, or the job is failed when its result was
  refused).
* Heartbeats (heartbeats.py) extend every running job's lease; a heartbeat or report
  refused because the lease is gone (the job was cancelled, or taken back) cancels the
  handler.
* When Conveyor is unreachable, claims back off and reports are retried for as long as
  the lease could still be valid; nothing is reported twice by mistake, because every
  report is fenced by the lease.
* `stop()` (SIGTERM in `conveyor worker`) stops claiming, lets running jobs finish for a
  grace period, then cancels the rest and hands their jobs back to the queue.

A worker runs the handlers it is given; the built-in `command` job type is added by
whoever builds the worker, when allowed (`conveyor.worker.command.register`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable
from typing import Any
from uuid import UUID

from conveyor.domain.backoff import Backoff
from conveyor.domain.jobs import ClaimedJob
from conveyor.worker.backend import (
    BackendUnavailable,
    LeaseGone,
    ReportRejected,
    WorkerBackend,
    WorkerRefused,
)
from conveyor.worker.completer import CompletionBatcher, Pending
from conveyor.worker.executor import HandlerThreads, JobExecutor
from conveyor.worker.handlers import Handlers
from conveyor.worker.heartbeats import Heartbeats
from conveyor.worker.options import WorkerOptions, WorkerStats
from conveyor.worker.run import JobRun, LeaseSettings

log = logging.getLogger("conveyor.worker")

CLAIM_SETTLE_SECONDS = 2.0


class Worker:
    def __init__(
        self, backend: WorkerBackend, handlers: Handlers, options: WorkerOptions | None = None
    ) -> None:
        self.backend = backend
        self.options = options or WorkerOptions()
        self.handlers = Handlers()
        self.handlers.merge(handlers)
        self.types = self.options.types or self.handlers.types
        self.stats = WorkerStats()
        self._lease = LeaseSettings(self.options.worker_id, self.options.lease_seconds)
        self._runs: dict[UUID, JobRun] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._threads = HandlerThreads(self.options.concurrency, self._slot_freed.set)
        self._completions = CompletionBatcher(backend, self.options.worker_id, self._settle)
        self._executor = JobExecutor(self.handlers, self._threads, self._completions, self.stats)
        self._heartbeats = Heartbeats(
            backend,
            self._runs.values,
            interval=self.options.heartbeat_interval,
            lease_seconds=self.options.lease_seconds,
        )

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
        background = [
            asyncio.create_task(self._heartbeats.run_forever(), name="worker-heartbeats"),
            asyncio.create_task(self._completions.run_forever(), name="worker-completions"),
        ]
        try:
            await self._claim_until_stopped()
        finally:
            await self._wind_down()
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._threads.shutdown()
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
            free = self.options.concurrency - max(len(self._runs), self._threads.busy)
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
            except WorkerRefused:
                raise
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

    def _new_run(self, job: ClaimedJob) -> JobRun:
        return JobRun(job, self.backend, self._lease, on_lost=self._count_lost)

    def _count_lost(self, run: JobRun) -> None:
        self.stats.lost += 1

    async def _hand_back(self, jobs: list[ClaimedJob]) -> None:
        await asyncio.gather(*(self._release(self._new_run(job)) for job in jobs))

    def _start(self, job: ClaimedJob) -> None:
        self.stats.claimed += 1
        run = self._new_run(job)
        self._runs[job.id] = run
        # Straight on the loop, unnamed: asyncio.create_task looks the loop up (a getpid()
        # system call on Python 3.11) and naming costs a UUID's text; the job's id is in
        # its log records (`logs.job_id`) instead.
        run.task = self._loop.create_task(self._executor.execute(run))
        run.task.add_done_callback(lambda _: self._finished(run))

    def _finished(self, run: JobRun) -> None:
        if not run.reporting:
            self._free_slot(run)

    def _free_slot(self, run: JobRun) -> None:
        self._runs.pop(run.job.id, None)
        self._slot_freed.set()

    def _settle(self, pending: Pending, refused: Exception | None) -> None:
        """What became of one completion: the job's slot is free again, unless the result
        itself was refused and the job still has to be failed."""
        run = pending.run
        if refused is None:
            self.stats.completed += 1
        elif isinstance(refused, LeaseGone):
            run.lose(refused)
            log.warning("job %s: completion refused: %s", run.job.id, refused.detail)
        elif isinstance(refused, ReportRejected):
            # The result itself was refused (too large, say): the job failed, and says why.
            log.warning("job %s: result refused: %s", run.job.id, refused)
            # The run (in `_runs`) holds the task; the job keeps its slot until it is done.
            run.task = asyncio.create_task(
                self._executor.report_failure(run, f"the result was refused: {refused}", False)
            )
            run.task.add_done_callback(lambda _: self._free_slot(run))
            return
        else:
            log.warning("job %s: completion not recorded: %s", run.job.id, refused)
        self._free_slot(run)

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
        # Jobs that finished have their completions on the way (the batcher runs until
        # `run` returns): wait for them to be settled, within what is left of the grace.
        while self._runs and (left := grace_ends - time.monotonic()) > 0:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), left)

    async def _release(self, run: JobRun) -> None:
        try:
            await self.backend.release(run.job, run.worker_id)
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
