"""The executor: runs a claimed job's handler and hands its outcome on.

Async handlers run as tasks on the loop; plain functions on a thread pool. A result goes
to the completion batcher; a failure (the handler raised, or its result cannot be sent)
is reported at once, to be retried while the job has attempts left.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from conveyor import logs
from conveyor.domain.jobs import ERROR_DETAIL_MAX_CHARS, ERROR_MAX_CHARS
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
            try:
                if handler.is_async:
                    result = await handler.function(context)
                else:
                    loop = asyncio.get_running_loop()
                    result = await self._threads.run(handler, SyncJobContext(context, loop))
            except asyncio.CancelledError:
                if run.lost.is_set():
                    return
                raise
            except LeaseGone:
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

    async def report_failure(
        self, run: JobRun, error: str, retryable: bool, *, detail: str | None = None
    ) -> None:
        """Fail the job's attempt; `detail` (a traceback) goes with it, its end kept."""
        error = storable_text(error, ERROR_MAX_CHARS)
        if detail is not None:
            detail = storable_text(detail[-ERROR_DETAIL_MAX_CHARS:], ERROR_DETAIL_MAX_CHARS)
        try:
            await run.report(
                lambda backend: backend.fail(run.job, error, retryable, run.worker_id, detail)
            )
            self._stats.failed += 1
        except (LeaseGone, ReportRejected, BackendUnavailable) as refused:
            log.warning("job %s: failure not recorded: %s", run.job.id, refused)
