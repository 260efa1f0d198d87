"""Handlers the worker tests run (also loaded by `conveyor worker` subprocesses)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conveyor.worker import Fail, Handlers, JobContext, SyncJobContext

handlers = Handlers()


@handlers.job("test.echo")
async def echo(job: JobContext) -> Any:
    return job.payload


@handlers.job("test.flaky")
async def flaky(job: JobContext) -> dict[str, int]:
    """Fails until the attempt named by payload.succeed_on."""
    if job.attempt < int(job.payload["succeed_on"]):
        raise RuntimeError(f"flaky failure on attempt {job.attempt}")
    return {"attempt": job.attempt}


@handlers.job("test.block")
async def block(job: JobContext) -> dict[str, int]:
    """Hangs on its first attempt (to be killed or cancelled), succeeds on later ones."""
    if job.attempt == 1:
        await job.progress(10, "blocking")
        await asyncio.sleep(3600)
    return {"attempt": job.attempt}


@handlers.job("test.permanent")
async def permanent(job: JobContext) -> None:
    raise Fail("not worth retrying", retryable=False)


@handlers.job("test.sync")
def sync_handler(job: SyncJobContext) -> dict[str, Any]:
    job.progress(50, "halfway, on a thread")
    step = job.add_step("blocking work")
    time.sleep(0.05)
    step.output("done\n")
    step.complete()
    return {"thread": True}


@handlers.job("test.steps")
async def with_steps(job: JobContext) -> dict[str, Any]:
    async with job.step("plan", phase="SETUP", step_type="AI_ACTION") as step:
        await step.tokens(tokens_input=100, tokens_output=20)
        await job.event("ai.tool_called", {"tool": "search"}, step_id=step.id)
    await job.progress(60)
    try:
        async with job.step("gate", phase="VALIDATION", step_type="GATE"):
            raise ValueError("gate refused")
    except ValueError:
        pass
    return {"steps": 2}


@handlers.job("test.unserialisable")
async def unserialisable(job: JobContext) -> object:
    return object()


@handlers.job("test.too_deep")
async def too_deep(job: JobContext) -> object:
    """A result nested deeper than the server stores."""
    result: list[object] = []
    for _ in range(40):
        result = [result]
    return result
