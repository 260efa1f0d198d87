"""What a handler sees of its job: the input, and calls to report progress, steps and
events and to learn of cancellation.

Reports go out as the worker holding the job's lease. When the lease is gone (the job was
cancelled, or taken back after the worker went quiet), a report raises `LeaseGone` and
the handler's task is cancelled: its work will not be recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

from conveyor.domain.errors import LeaseLossReason
from conveyor.worker.run import JobRun

T = TypeVar("T")


class JobContext:
    """The async handler's view of its job."""

    def __init__(self, run: JobRun) -> None:
        self._run = run
        self._job = job = run.job
        self.id: UUID = job.id
        self.type: str = job.type
        self.payload: Any = job.payload
        self.attempt: int = job.attempt
        self.max_attempts: int = job.max_attempts
        self.priority: int = job.priority
        self.agent_task_id: str | None = job.agent_task_id
        self.lease_id: UUID = job.lease_id
        self.workspace_id: UUID | None = job.workspace_id
        self.worker_id: str = run.worker_id

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled, its lease taken back, or its attempt timed out
        (a plain function still running past its timeout should stop)."""
        return self._run.lost.is_set()

    @property
    def cancel_reason(self) -> str | None:
        """Why the job was taken away, in words (None while it is ours)."""
        return self._run.lost_reason

    @property
    def lost_because(self) -> LeaseLossReason | None:
        """Why the job was taken away, as a code: `cancelled`, `expired`, `reassigned`,
        `timed_out`…"""
        return self._run.lost_because

    async def wait_cancelled(self) -> None:
        await self._run.lost.wait()

    async def progress(self, percent: int, message: str | None = None) -> None:
        await self._run.report(
            lambda backend: backend.progress(self._job, percent, message, self.worker_id)
        )

    async def event(
        self, event_type: str, payload: Any = None, *, step_id: UUID | None = None
    ) -> None:
        """Append an event of the worker's own (`ai.tool_called`, `gate.passed`, …)."""
        await self._run.report(
            lambda backend: backend.event(
                self._job, event_type, payload or {}, step_id, self.worker_id
            )
        )

    async def add_step(
        self,
        name: str,
        *,
        phase: str = "EXECUTION",
        step_type: str = "COMMAND",
        status: str = "RUNNING",
    ) -> StepHandle:
        step_id = await self._run.report(
            lambda backend: backend.add_step(
                self._job,
                name=name,
                phase=phase,
                step_type=step_type,
                status=status,
                worker_id=self.worker_id,
            )
        )
        return StepHandle(self, step_id)

    def step(self, name: str, *, phase: str = "EXECUTION", step_type: str = "COMMAND") -> StepScope:
        """`async with job.step("build") as step:` runs a step: RUNNING on entry, then
        COMPLETED, or FAILED when the block raises."""
        return StepScope(self, name, phase, step_type)

    async def _update_step(self, step_id: UUID, changes: dict[str, Any]) -> None:
        await self._run.report(
            lambda backend: backend.update_step(self._job, step_id, changes, self.worker_id)
        )


class StepHandle:
    def __init__(self, job: JobContext, step_id: UUID) -> None:
        self.job = job
        self.id = step_id

    async def output(self, text: str, stream: str = "stdout") -> None:
        await self.job._update_step(self.id, {"output": text, "output_stream": stream})

    async def progress(self, percent: int | None = None, message: str | None = None) -> None:
        await self.job._update_step(self.id, {"progress_percent": percent, "message": message})

    async def tokens(
        self, tokens_input: int | None = None, tokens_output: int | None = None
    ) -> None:
        await self.job._update_step(
            self.id, {"tokens_input": tokens_input, "tokens_output": tokens_output}
        )

    async def complete(self, **changes: Any) -> None:
        await self.job._update_step(self.id, {"status": "COMPLETED", **changes})

    async def fail(self, **changes: Any) -> None:
        await self.job._update_step(self.id, {"status": "FAILED", **changes})

    async def skip(self) -> None:
        await self.job._update_step(self.id, {"status": "SKIPPED"})


class StepScope:
    def __init__(self, job: JobContext, name: str, phase: str, step_type: str) -> None:
        self._job = job
        self._name = name
        self._phase = phase
        self._type = step_type
        self._handle: StepHandle | None = None

    async def __aenter__(self) -> StepHandle:
        self._handle = await self._job.add_step(self._name, phase=self._phase, step_type=self._type)
        return self._handle

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._handle is not None
        if self._job.cancelled:
            return
        if error is None:
            await self._handle.complete()
        elif not isinstance(error, asyncio.CancelledError):
            await self._handle.fail()


class SyncJobContext:
    """The same calls for plain (blocking) handlers, which run on a worker thread."""

    def __init__(self, context: JobContext, loop: asyncio.AbstractEventLoop) -> None:
        self._context = context
        self._loop = loop
        self.id = context.id
        self.type = context.type
        self.payload = context.payload
        self.attempt = context.attempt
        self.max_attempts = context.max_attempts
        self.priority = context.priority
        self.agent_task_id = context.agent_task_id
        self.lease_id = context.lease_id
        self.worker_id = context.worker_id

    def _wait(self, call: Callable[[], Awaitable[T]]) -> T:
        async def run() -> T:
            return await call()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    @property
    def cancelled(self) -> bool:
        return self._context.cancelled

    def progress(self, percent: int, message: str | None = None) -> None:
        self._wait(lambda: self._context.progress(percent, message))

    def event(self, event_type: str, payload: Any = None, *, step_id: UUID | None = None) -> None:
        self._wait(lambda: self._context.event(event_type, payload, step_id=step_id))

    def add_step(
        self,
        name: str,
        *,
        phase: str = "EXECUTION",
        step_type: str = "COMMAND",
        status: str = "RUNNING",
    ) -> SyncStepHandle:
        handle = self._wait(
            lambda: self._context.add_step(name, phase=phase, step_type=step_type, status=status)
        )
        return SyncStepHandle(handle, self)


class SyncStepHandle:
    def __init__(self, handle: StepHandle, job: SyncJobContext) -> None:
        self._handle = handle
        self._job = job
        self.id = handle.id

    def output(self, text: str, stream: str = "stdout") -> None:
        self._job._wait(lambda: self._handle.output(text, stream))

    def complete(self, **changes: Any) -> None:
        self._job._wait(lambda: self._handle.complete(**changes))

    def fail(self, **changes: Any) -> None:
        self._job._wait(lambda: self._handle.fail(**changes))
