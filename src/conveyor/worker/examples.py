"""Example handlers, loaded by the quick start (`--handlers conveyor.worker.examples:handlers`).

demo.echo    returns its payload
demo.sleep   sleeps payload.seconds (default 5), reporting progress; stops when cancelled
demo.fail    fails with payload.message (retried while attempts are left)
demo.agent   an agent-like job: setup, two AI actions with token counts, a gate
"""

from __future__ import annotations

import asyncio
from typing import Any

from conveyor.worker.context import JobContext
from conveyor.worker.handlers import Fail, Handlers

handlers = Handlers()


@handlers.job("demo.echo")
async def echo(job: JobContext) -> Any:
    return job.payload


@handlers.job("demo.sleep")
async def sleep(job: JobContext) -> dict[str, Any]:
    seconds = float((job.payload or {}).get("seconds", 5))
    ticks = 20
    for tick in range(1, ticks + 1):
        await asyncio.sleep(seconds / ticks)
        await job.progress(tick * 100 // ticks, f"{tick}/{ticks}")
    return {"slept_seconds": seconds}


@handlers.job("demo.fail")
async def fail(job: JobContext) -> None:
    raise Fail(str((job.payload or {}).get("message", "failed on purpose")))


@handlers.job("demo.agent")
async def agent(job: JobContext) -> dict[str, Any]:
    async with job.step("prepare workspace", phase="SETUP", step_type="COMMAND") as step:
        await step.output("cloning repository…\n")
        await asyncio.sleep(0.2)
    for number, action in enumerate(("plan the change", "write the patch"), start=1):
        async with job.step(action, phase="EXECUTION", step_type="AI_ACTION") as step:
            await job.event(
                "ai.tool_called", {"tool": "read_file", "call": number}, step_id=step.id
            )
            await asyncio.sleep(0.3)
            await step.tokens(tokens_input=1200 * number, tokens_output=300 * number)
        await job.progress(number * 40)
    async with job.step("tests pass", phase="VALIDATION", step_type="GATE") as step:
        await job.event("gate.passed", {"gate": "tests"}, step_id=step.id)
    return {"patch": "diff --git …", "tokens": 4500}
