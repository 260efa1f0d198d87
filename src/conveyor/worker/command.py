"""The built-in `command` job type: run a program (an argv, never a shell), stream its
output as `step.output` events, and complete with its exit code and the tail of its output.

Off unless a worker is started with command jobs allowed, because it runs programs with
the worker's rights. Payload:

    {"argv": ["python", "-m", "build"], "cwd": "/srv/app", "timeout_seconds": 600,
     "env": {"CI": "1"}}
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from typing import Any, Final

from conveyor.domain.steps import STEP_OUTPUT_MAX_CHARS
from conveyor.worker.context import JobContext, StepHandle
from conveyor.worker.handlers import Fail, Handlers

COMMAND_JOB_TYPE: Final = "command"
DEFAULT_TIMEOUT_SECONDS: Final = 3600.0
OUTPUT_TAIL_CHARS: Final = 4096
FLUSH_SECONDS: Final = 0.1
FLUSH_CHARS: Final = 16 * 1024
TERMINATE_GRACE_SECONDS: Final = 5.0


def _parse(payload: Any) -> tuple[list[str], str | None, float, dict[str, str] | None]:
    if not isinstance(payload, dict):
        raise Fail("a command job's payload must be an object with an argv", retryable=False)
    argv = payload.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise Fail("payload.argv must be a non-empty list of strings", retryable=False)
    cwd = payload.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise Fail("payload.cwd must be a string", retryable=False)
    timeout = payload.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise Fail("payload.timeout_seconds must be a positive number", retryable=False)
    env = payload.get("env")
    if env is not None and (
        not isinstance(env, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise Fail("payload.env must map strings to strings", retryable=False)
    return argv, cwd, float(timeout), env


class _Tail:
    """The last OUTPUT_TAIL_CHARS characters of everything the program printed."""

    def __init__(self) -> None:
        self.text = ""

    def add(self, text: str) -> None:
        self.text = (self.text + text)[-OUTPUT_TAIL_CHARS:]


class _OutputPump:
    """Reads one pipe and sends what it read as step output: every FLUSH_SECONDS, so a quiet
    program's last line goes out promptly, and at once when FLUSH_CHARS pile up, in which
    case reading waits for the send: a chatty program is slowed to the pace the reports
    go out instead of filling memory. Output is made storable on the way (UTF-8 decoded
    across reads, NUL replaced, chunks within the API's limit)."""

    def __init__(self, step: StepHandle, stream_name: str, tail: _Tail) -> None:
        self._step = step
        self._stream = stream_name
        self._tail = tail
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer: list[str] = []
        self._buffered = 0
        self._sending = asyncio.Lock()
        self._ended = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            while chunk := await stream.read(4096):
                self._take(self._decoder.decode(chunk))
                if self._buffered >= FLUSH_CHARS:
                    await self._flush()
            self._take(self._decoder.decode(b"", final=True))
        except BaseException:
            flusher.cancel()  # stopped (cancelled): nothing more is sent
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            raise
        # The output ended: let a periodic flush on its way finish (cancelling it would lose
        # what it had taken from the buffer), then send the rest.
        self._ended.set()
        await flusher
        await self._flush()

    def _take(self, text: str) -> None:
        if not text:
            return
        text = text.replace("\x00", "\ufffd")
        self._tail.add(text)
        self._buffer.append(text)
        self._buffered += len(text)

    async def _flush_periodically(self) -> None:
        while not self._ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), FLUSH_SECONDS)
            await self._flush()

    async def _flush(self) -> None:
        async with self._sending:
            if not self._buffer:
                return
            text = "".join(self._buffer)
            self._buffer.clear()
            self._buffered = 0
            for start in range(0, len(text), STEP_OUTPUT_MAX_CHARS):
                await self._step.output(text[start : start + STEP_OUTPUT_MAX_CHARS], self._stream)


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after a grace period."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), TERMINATE_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


async def run_command(job: JobContext) -> dict[str, Any]:
    argv, cwd, timeout, env = _parse(job.payload)
    step = await job.add_step(" ".join(argv)[:200], phase="EXECUTION", step_type="COMMAND")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        await step.fail()
        raise Fail(f"cannot start {argv[0]}: {error}", retryable=False) from error
    tail = _Tail()
    assert process.stdout is not None
    assert process.stderr is not None
    pumps = asyncio.gather(
        _OutputPump(step, "stdout", tail).pump(process.stdout),
        _OutputPump(step, "stderr", tail).pump(process.stderr),
    )
    try:
        await asyncio.wait_for(asyncio.gather(pumps, process.wait()), timeout)
    except TimeoutError:
        await _terminate(process)
        await step.fail()
        raise Fail(
            f"timed out after {timeout:g}s; output ends with: {tail.text[-500:]}",
            retryable=False,
        ) from None
    except BaseException:
        # Cancelled (the job was cancelled, or the worker is stopping): stop the program.
        await asyncio.shield(_terminate(process))
        raise
    exit_code = process.returncode
    assert exit_code is not None
    if exit_code != 0:
        await step.fail()
        raise Fail(f"exit code {exit_code}; output ends with: {tail.text[-1000:]}", retryable=False)
    await step.complete()
    return {"exit_code": exit_code, "output_tail": tail.text}


def register(handlers: Handlers) -> Handlers:
    """Let a worker built with these handlers run `command` jobs (it runs programs with
    the worker's rights: only where asked for)."""
    handlers.add(COMMAND_JOB_TYPE, run_command)
    return handlers
