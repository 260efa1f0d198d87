"""The executor: runs a claimed job's handler and hands its outcome on.

Async handlers run as tasks on the loop; plain functions on a thread pool. A result goes
to the completion batcher; a failure (the handler raised, or its result cannot be sent)
is reported at once, to be retried while the job has attempts left.

A handler that runs past its timeout (the job's, else the handler's default) fails the
attempt as timed out. An async handler is cancelled, and the failure reported once it
has stopped. A plain function cannot be stopped: the failure is reported at the deadline,
its thread runs on (still counted busy, so it keeps its slot) and what it returns or
reports afterwards is ignored.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor import logs
from conveyor.domain.jobs import ERROR_DETAIL_MAX_CHARS, ERROR_MAX_CHARS
from conveyor.domain.timeouts import effective_timeout, timeout_error
from conveyor.serialization import dumps
from conveyor.worker.backend import BackendUnavailable, LeaseGone, ReportRejected
from conveyor.worker.completer import CompletionBatcher
from conveyor.worker.context import JobContext, SyncJobContext
from conveyor.worker.handlers import Fail, Handler, Handlers
from conveyor.worker.options import WorkerStats
from conveyor.worker.run import JobRun

log = logging.getLogger("conveyor.worker")


def storable_text(text: str, limit: int) -> str:
    """Text the API will take: no NUL, no lone surrogates, at most `limit` characters."""
    cleaned = text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class HandlerThreads:
    """The threads plain handlers run on. A plain handler whose job was cancelled keeps
    its thread until it returns: `busy` counts threads, not jobs."""

    def __init__(self, size: int, on_free: Callable[[], None]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="conveyor-job")
        self._on_free = on_free
        self._count_lock = threading.Lock()
        self.busy = 0

    async def run(self, handler: Handler, context: SyncJobContext) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, handler, context, loop)

    def _call(
        self, handler: Handler, context: SyncJobContext, loop: asyncio.AbstractEventLoop
    ) -> Any:
        with self._count_lock:
            self.busy += 1
        try:
            return handler.function(context)
        finally:
            with self._count_lock:
                self.busy -= 1
            loop.call_soon_threadsafe(self._on_free)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class HandlerTimedOut(Exception):
    """The handler ran past its timeout of `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(timeout_error(seconds))
        self.seconds = seconds


class JobExecutor:
    def __init__(
        self,
        handlers: Handlers,
        threads: HandlerThreads,
        completions: CompletionBatcher,
        stats: WorkerStats,
    ) -> None:
        self._handlers = handlers
        self._threads = threads
        self._completions = completions
        self._stats = stats

    async def execute(self, run: JobRun) -> None:
        """Run the job's handler to its end: its result queued for completion, or its
        failure reported. Ends quietly when the lease is lost."""
        token = logs.job_id.set(str(run.job.id))
        try:
            handler = self._handlers.get(run.job.type)
            if handler is None:
                await self.report_failure(run, f"no handler for job type {run.job.type}", False)
                return
            context = JobContext(run)
            timeout = effective_timeout(run.job.timeout_seconds, handler.timeout)
            try:
                if timeout is not None:
                    result = await self._call_within(timeout, handler, context)
                elif handler.is_async:
                    result = await handler.function(context)
                else:
                    result = await self._on_thread(handler, context)
            except asyncio.CancelledError:
                if run.lost.is_set():
                    return
                raise
            except LeaseGone:
                return
            except HandlerTimedOut as timed_out:
                await self.report_timeout(run, timed_out.seconds)
                return
            except Fail as failure:
                await self.report_failure(run, failure.message, failure.retryable)
                return
            except Exception as error:
                log.exception("job %s (%s) raised", run.job.id, run.job.type)
                detail = "".join(traceback.format_exception(error))
                await self.report_failure(
                    run, f"{type(error).__name__}: {error}", True, detail=detail
                )
                return
            try:
                size = len(dumps(result))
            except TypeError as error:
                await self.report_failure(run, f"the result is not JSON: {error}", False)
                return
            self._completions.add(run, result, size)
        finally:
            logs.job_id.reset(token)

    def _on_thread(self, handler: Handler, context: JobContext) -> Awaitable[Any]:
        loop = asyncio.get_running_loop()
        return self._threads.run(handler, SyncJobContext(context, loop))

    async def _call_within(self, seconds: float, handler: Handler, context: JobContext) -> Any:
        """The handler's result, or HandlerTimedOut once it has run `seconds`: an async
        handler is cancelled then; a plain function's thread is left to finish alone (the
        await on it is what is cancelled)."""
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                if handler.is_async:
                    result = await handler.function(context)
                else:
                    result = await self._on_thread(handler, context)
        except Exception as error:
            if deadline.expired():  # whatever it raised while being cancelled
                raise HandlerTimedOut(seconds) from error
            raise
        if deadline.expired():  # it swallowed the cancellation and returned late
            raise HandlerTimedOut(seconds)
        return result

    async def report_timeout(self, run: JobRun, seconds: float) -> None:
        """Fail the attempt as timed out (retried while the job has attempts left); from
        then on the job is no longer ours."""
        error = timeout_error(seconds)
        log.warning("job %s (%s) %s", run.job.id, run.job.type, error)
        await self.report_failure(run, error, True, timed_out_after=seconds)
        run.time_out(error)

    async def report_failure(
        self,
        run: JobRun,
        error: str,
        retryable: bool,
        *,
        detail: str | None = None,
        timed_out_after: float | None = None,
    ) -> None:
        """Fail the job's attempt; `detail` (a traceback) goes with it, its end kept."""
        error = storable_text(error, ERROR_MAX_CHARS)
        if detail is not None:
            detail = storable_text(detail[-ERROR_DETAIL_MAX_CHARS:], ERROR_DETAIL_MAX_CHARS)
        try:
            await run.report(
                lambda backend: backend.fail(
                    run.job, error, retryable, run.worker_id, detail, timed_out_after
                )
            )
            self._stats.failed += 1
        except (LeaseGone, ReportRejected, BackendUnavailable) as refused:
            log.warning("job %s: failure not recorded: %s", run.job.id, refused)
