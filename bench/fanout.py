"""The `sse-fanout` scenario (Conveyor only): how fast `conveyor serve` takes single creates
while N clients follow the workspace's event stream, and how late those streams are.

For each N of `plan.sse_fanout_followers`, on a fresh database and a fresh server (one for
every N without `plan.sse_fanout_server_per_window`, as in `--quick`): a follower process
(`bench.fanout_clients follow`) opens N streams on `/v1/workspaces/{ws}/events/stream`; a
producer process (`bench.fanout_clients produce`) creates a few jobs (warm-up), then POSTs
one job per request on `plan.sse_fanout_connections` keep-alive connections for
`plan.sse_fanout_seconds`. Then the followers are asked to wait until every stream has
every event of those jobs (two each: `job.created`, `job.queued`). Figures per N:
creates/s, the server's CPU, delivery lag (event timestamp -> arrival, over a sample of
streams that parse every event), and how long after the last create the slowest stream had
everything.

No worker runs: the jobs stay queued, so the server's work is the creates and the fan-out.

With `BENCH_FANOUT_PROFILE=<directory>` in the environment, py-spy (`pip install py-spy`)
records the server during each measured window of the largest N, as collapsed stacks
(`fanout-<system>-<N>.txt`, py-spy's raw format) for `bench.fanout profile` to summarise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.infra import Infra
from bench.plan import Plan
from bench.process import start_child
from bench.sse import CpuClock, SseTarget
from bench.systems.base import System

try:
    import psutil
except ImportError:  # scripts/bench.sh installs it; without it the CPU figures are NaN
    psutil = None

SETTLE_SECONDS = 60.0
"""How long the followers may take, after the last create, to have every event."""
PROFILE_VARIABLE = "BENCH_FANOUT_PROFILE"


class Child:
    """A `bench.fanout_clients` process, driven over stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path) -> None:
        self.process = process
        self.out = out
        self.cpu = CpuClock(process.pid)

    @classmethod
    async def start(cls, role: str, target: SseTarget, out: Path, *args: str) -> Child:
        process = await start_child(
            "bench.fanout_clients",
            role,
            "--port",
            str(target.port),
            "--token",
            target.admin_token,
            "--out",
            str(out),
            *args,
        )
        return cls(process, out)

    async def line(self, within: float) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), within)
        return raw.decode().strip()

    async def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{text}\n".encode())
        await self.process.stdin.drain()

    def figures(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.out.read_text())
        self.out.unlink()
        return found

    async def close(self) -> None:
        if self.process.returncode is None:  # the producer exits by itself once it reported
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                await self.say("close")
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def one_window(
    target: SseTarget, infra: Infra, plan: Plan, followers: int, profile: Path | None
) -> dict[str, Any]:
    """One N on one running server: open the streams, produce, let the streams settle."""
    workdir = infra.workdir
    path = f"/v1/workspaces/{target.workspace}"
    streams: Child | None = None
    producer: Child | None = None
    spy: asyncio.subprocess.Process | None = None
    try:
        open_seconds = 0.0
        if followers:
            streams = await Child.start(
                "follow",
                target,
                workdir / f"fanout-follow-{os.getpid()}.json",
                "--path",
                f"{path}/events/stream",
                "--streams",
                str(followers),
                "--measured",
                str(plan.sse_fanout_measured),
            )
            opened = (await streams.line(120)).split()
            if not opened or opened[0] != "open":
                raise RuntimeError(f"the followers could not open: {' '.join(opened)}")
            open_seconds = float(opened[2])
        producer = await Child.start(
            "produce",
            target,
            workdir / f"fanout-produce-{os.getpid()}.json",
            "--path",
            f"{path}/jobs",
            "--job-type",
            target.job_type,
            "--connections",
            str(plan.sse_fanout_connections),
            "--warmup",
            str(plan.warmup_jobs),
            "--seconds",
            str(plan.sse_fanout_seconds),
        )
        warm = (await producer.line(120)).split()
        if not warm or warm[0] != "warm":
            raise RuntimeError(f"the producer did not warm up: {' '.join(warm)}")
        if profile is not None:
            spy = await asyncio.create_subprocess_exec(
                "py-spy",
                "record",
                "--pid",
                str(target.pid),
                "--duration",
                str(max(1, math.floor(plan.sse_fanout_seconds))),
                "--rate",
                "200",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(profile),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        server_cpu = CpuClock(target.pid)
        split = CpuSplit(target.pid)
        server_cpu.start()
        producer.cpu.start()
        if streams is not None:
            streams.cpu.start()
        await producer.say("go")
        if await producer.line(plan.sse_fanout_seconds + 120) != "done":
            raise RuntimeError("the producer did not report")
        result: dict[str, Any] = {"followers": followers, "open_seconds": open_seconds}
        result["server_cpu_pct"] = server_cpu.percent()
        result.update(split.percent())
        result["follower_cpu_pct"] = streams.cpu.percent() if streams else math.nan
        produced = producer.figures()
        if produced["refused"]:
            raise RuntimeError(f"creates not answered 201: {produced['refused']}")
        result.update(produced)
        if streams is not None:
            events = 2 * (produced["warmup_created"] + produced["created"])
            await streams.say(f"expect {events} {SETTLE_SECONDS}")
            if await streams.line(SETTLE_SECONDS + 30) != "done":
                raise RuntimeError("the followers did not report")
            delivered = streams.figures()
            if not delivered["complete"]:
                raise RuntimeError(
                    f"streams missed events: {delivered['events_min']} of {events} on the "
                    f"worst stream after {SETTLE_SECONDS:.0f} s ({delivered['errors']})"
                )
            result.update({f"streams_{key}": value for key, value in delivered.items()})
        if spy is not None:
            await spy.wait()
            result["profile"] = str(profile)
        return result
    finally:
        for child in (producer, streams):
            if child is not None:
                await child.close()
        if spy is not None and spy.returncode is None:
            spy.kill()
            await spy.wait()


class CpuSplit:
    """The server's user and system CPU, and the whole machine's, over the window: system
    time is mostly the sockets' writes; the machine's shows what else ran (a shared machine's
    other work takes CPU from the server)."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid) if psutil is not None else None
        self._times = self._process.cpu_times() if self._process is not None else None
        self._wall = time.monotonic()
        if psutil is not None:
            psutil.cpu_percent(None)

    def percent(self) -> dict[str, float]:
        if self._process is None or self._times is None or psutil is None:
            return {}
        wall = time.monotonic() - self._wall
        now = self._process.cpu_times()
        return {
            "server_user_cpu_pct": 100 * (now.user - self._times.user) / wall,
            "server_system_cpu_pct": 100 * (now.system - self._times.system) / wall,
            "machine_cpu_pct": psutil.cpu_percent(None) * (psutil.cpu_count() or 1),
        }


FIGURES = {
    "creates_per_s": "creates/s",
    "server_cpu_pct": "server CPU %",
    "lag_p50_ms": "lag p50 ms",
    "lag_p99_ms": "lag p99 ms",
    "behind_s": "behind s",
}


def metric_labels(followers: int) -> dict[str, str]:
    """The figures of one N: metric name (`creates_per_s_300`) -> label (`creates/s @300`).
    Lag and how far behind only with followers."""
    names = list(FIGURES)[:2] if followers == 0 else list(FIGURES)
    return {f"{name}_{followers}": f"{FIGURES[name]} @{followers}" for name in names}


async def measure(
    system: System, infra: Infra, plan: Plan
) -> tuple[dict[str, float], dict[str, Any]]:
    """One run: every N of the plan, each on a fresh database and server; without
    `plan.sse_fanout_server_per_window`, all on one (a follower's stream starts from now,
    so it never sees an earlier window's events)."""
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    counts = plan.sse_fanout_followers
    per_server = [(n,) for n in counts] if plan.sse_fanout_server_per_window else [counts]
    for served in per_server:
        async with system.session() as session, session.sse_target() as target:
            for followers in served:
                profile = profile_path(system.name, followers, max(counts))
                window = await one_window(target, infra, plan, followers, profile)
                details[str(followers)] = window
                metrics.update(window_metrics(followers, window))
    return metrics, details


def window_metrics(followers: int, window: dict[str, Any]) -> dict[str, float]:
    """The metrics of one N (see `metric_labels`) from its window's figures."""
    figures = {
        "creates_per_s": window["creates_per_s"],
        "server_cpu_pct": window["server_cpu_pct"],
    }
    if followers:
        figures.update(
            lag_p50_ms=window["streams_lag_p50_ms"],
            lag_p99_ms=window["streams_lag_p99_ms"],
            behind_s=window["streams_settled_seconds"],
        )
    return {f"{key}_{followers}": value for key, value in figures.items()}


def profile_path(system: str, followers: int, largest: int) -> Path | None:
    directory = os.environ.get(PROFILE_VARIABLE)
    if not directory or followers != largest:
        return None
    if shutil.which("py-spy") is None:
        raise RuntimeError(f"{PROFILE_VARIABLE} is set but py-spy is not installed")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return Path(directory) / f"fanout-{system}-{followers}.txt"


# -- summarising a py-spy profile -----------------------------------------------------------


def summarise(path: Path, top: int = 25) -> str:
    """Where a collapsed-stack profile spent its samples: how many were on the event loop's
    thread and how many on other threads (SQLite's connection threads, the executor), then,
    as shares of the event loop's samples, the functions on the stack (inclusive), at its
    top (self), and self time summed by module."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    by_module: Counter[str] = Counter()
    threads = 0
    loop = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        if frames[0].startswith("Thread._bootstrap "):
            threads += count
            continue
        # uvloop runs tasks from C: a coroutine's frames start the stack on the loop's thread.
        loop += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
        by_module[frames[-1].rsplit("(", 1)[-1].rstrip(")")] += count
    lines = [f"{path.name}: {loop} samples on the event loop's thread, {threads} on other threads"]
    for title, counter in (("inclusive", inclusive), ("self", own), ("self by module", by_module)):
        lines.append(f"-- {title} (share of the event loop's samples)")
        for frame, count in counter.most_common(top):
            lines.append(f"{100 * count / max(loop, 1):5.1f}%  {frame}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`function (path/to/module.py:line)` -> `function (module.py)`."""
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0].rstrip(")")
    return f"{name} ({module})"


if __name__ == "__main__":
    # python -m bench.fanout profile FILE...   (see BENCH_FANOUT_PROFILE)
    if len(sys.argv) < 3 or sys.argv[1] != "profile":
        sys.exit("usage: python -m bench.fanout profile FILE...")
    for name in sys.argv[2:]:
        print(summarise(Path(name)))
