"""The SSE scenarios (Conveyor only: its peers have no event streams).

On a real `conveyor serve` process: one job is created and claimed (a worker key, a lease);
a client process (`bench.sse_client`) opens streams on that job (and, for `sse-quiet`, one
on each of many other jobs); for `sse-many`, the server is watched for a while with every
stream open and nothing written (its CPU, from psutil, and `conveyor_db_statements` from
`GET /metrics` before and after); then a writer appends `bench.tick` events over HTTP
(`POST .../jobs/{id}/events` with the lease) at a steady rate, each carrying
`payload.sent = time.time()` taken just before its POST, and the client notes when each
stream receives each event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.measure import percentile
from bench.process import start_child

WARMUP_EVENTS = 5
EVENT_TYPE = "bench.tick"


@dataclass(frozen=True, slots=True)
class SseTarget:
    """A running `conveyor serve` and what the scenario needs to talk to it."""

    url: str
    port: int
    pid: int
    workspace: str
    job_type: str
    admin_token: str
    """Creates the job and opens the streams (any key with the stream permission would)."""
    worker_token: str
    """Claims the job and appends the events, as a worker does."""


try:
    import psutil
except ImportError:  # scripts/bench.sh installs it; the test suite may run without
    psutil = None


class CpuClock:
    """CPU seconds a process (with `children`, and its children) used, between two looks.
    Without psutil every figure is NaN (and the harness leaves NaN figures out)."""

    def __init__(self, pid: int, *, children: bool = False) -> None:
        self._process = psutil.Process(pid) if psutil is not None else None
        self._children = children
        self._cpu = 0.0
        self._wall = 0.0

    def _now(self) -> float:
        if self._process is None:
            return math.nan
        total = 0.0
        family = self._process.children(recursive=True) if self._children else []
        for process in (self._process, *family):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def start(self) -> None:
        self._cpu = self._now()
        self._wall = time.monotonic()

    def percent(self) -> float:
        """CPU since start(), as a percentage of one core."""
        wall = time.monotonic() - self._wall
        return 100 * (self._now() - self._cpu) / wall if wall > 0 else math.nan

    def rss_mib(self) -> float:
        if self._process is None:
            return math.nan
        return float(self._process.memory_info().rss / 2**20)


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """The unlabelled series of `GET /metrics` that the scenario reads."""
    response = await client.get("/metrics")
    response.raise_for_status()
    wanted = {"conveyor_db_statements", "conveyor_sse_streams"}
    found: dict[str, float] = {}
    for line in response.text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    return found


class SseClients:
    """The client process holding the streams."""

    def __init__(self, process: asyncio.subprocess.Process, out: Path) -> None:
        self.process = process
        self.out = out
        self.open_seconds = math.nan

    @classmethod
    async def open(
        cls, target: SseTarget, job_id: str, streams: int, workdir: Path, others: list[str]
    ) -> tuple[SseClients, float]:
        out = workdir / f"sse-client-{os.getpid()}-{id(target)}.json"
        extra: list[str] = []
        if others:
            listed = workdir / f"sse-client-{os.getpid()}-{id(target)}.paths"
            listed.write_text("\n".join(others))
            extra = ["--others", str(listed)]
        process = await start_child(
            "bench.sse_client",
            "--port",
            str(target.port),
            "--path",
            f"/v1/workspaces/{target.workspace}/jobs/{job_id}/events/stream",
            "--token",
            target.admin_token,
            "--streams",
            str(streams),
            "--out",
            str(out),
            *extra,
        )
        clients = cls(process, out)
        line = (await clients._line(120)).split()
        if not line or line[0] != "open":
            await clients.kill()
            raise RuntimeError(f"the SSE client could not open its streams: {' '.join(line)}")
        return clients, float(line[2])

    async def _line(self, within: float) -> str:
        assert self.process.stdout is not None
        return (await asyncio.wait_for(self.process.stdout.readline(), within)).decode().strip()

    async def _say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{text}\n".encode())
        await self.process.stdin.drain()

    async def reset(self) -> None:
        """Forget the ticks received so far."""
        await self._say("reset")
        if await self._line(30) != "ok":
            raise RuntimeError("the SSE client did not reset")

    async def collect(self, events: int, within: float) -> dict[str, Any]:
        await self._say(f"expect {events} {within}")
        if await self._line(within + 30) != "done":
            raise RuntimeError("the SSE client did not report")
        figures: dict[str, Any] = json.loads(self.out.read_text())
        self.out.unlink()
        return figures

    async def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._say("close")
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            await self.kill()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def write_events(
    client: httpx.AsyncClient, path: str, lease_id: str, *, rate: float, seconds: float, first: int
) -> list[float]:
    """POST `rate` events a second for `seconds` on a fixed schedule (open loop); return
    each POST's duration in ms."""
    total = max(1, round(rate * seconds))
    durations: list[float] = []
    origin = time.monotonic()
    for number in range(first, first + total):
        due = origin + (number - first) / rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        started = time.perf_counter()
        response = await client.post(
            path,
            json={
                "type": EVENT_TYPE,
                "payload": {"sent": time.time(), "n": number},
                "lease_id": lease_id,
            },
        )
        durations.append((time.perf_counter() - started) * 1000)
        if response.status_code != 201:
            raise RuntimeError(f"append event: HTTP {response.status_code} {response.text}")
    return durations


class SseRun:
    """One job created and claimed on a running server, streams opened on it (and on other
    jobs), idle windows watched and events written: the steps the scenarios combine."""

    def __init__(self, target: SseTarget, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir
        self.jobs_path = f"/v1/workspaces/{target.workspace}/jobs"
        self.admin = httpx.AsyncClient(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.admin_token}"},
            timeout=60,
        )
        self.worker = httpx.AsyncClient(
            base_url=target.url,
            headers={"Authorization": f"Bearer {target.worker_token}"},
            timeout=60,
        )
        self.server_cpu = CpuClock(target.pid)
        self.clients: list[SseClients] = []
        self.job_id = ""
        self.lease_id = ""
        self._written = 0

    async def __aenter__(self) -> SseRun:
        created = await self.admin.post(
            self.jobs_path, json={"type": self.target.job_type, "payload": {"i": 0}}
        )
        created.raise_for_status()
        self.job_id = created.json()["id"]
        claimed = await self.worker.post(
            f"/v1/workspaces/{self.target.workspace}/claims",
            json={
                "types": [self.target.job_type],
                "limit": 1,
                "lease_seconds": 600,
                "wait_seconds": 0,
                "worker_id": "bench-sse-writer",
            },
        )
        claimed.raise_for_status()
        [job] = claimed.json()["data"]
        if job["id"] != self.job_id:
            raise RuntimeError("claimed another job than the streamed one")
        self.lease_id = job["lease_id"]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for clients in self.clients:
            await clients.close()
        await self.admin.aclose()
        await self.worker.aclose()

    async def open(self, streams: int, *, others: int = 0) -> SseClients:
        """A client process with `streams` streams on the job and one on each of `others`
        new (queued) jobs that nothing writes to."""
        other_paths: list[str] = []
        while len(other_paths) < others:
            batch = min(1000, others - len(other_paths))
            made = await self.admin.post(
                f"{self.jobs_path}/batch",
                json={"jobs": [{"type": self.target.job_type, "payload": {"i": 0}}] * batch},
            )
            made.raise_for_status()
            other_paths += [
                f"{self.jobs_path}/{job['id']}/events/stream" for job in made.json()["data"]
            ]
        clients, seconds = await SseClients.open(
            self.target, self.job_id, streams, self.workdir, other_paths
        )
        clients.open_seconds = seconds
        self.clients.append(clients)
        return clients

    async def streams_on_server(self) -> float:
        return (await scrape(self.admin)).get("conveyor_sse_streams", math.nan)

    async def idle(self, seconds: float, clients: SseClients) -> dict[str, float]:
        """Nothing written for `seconds`: the server's CPU and the statements it sent."""
        client_cpu = CpuClock(clients.process.pid)
        before = await scrape(self.admin)
        self.server_cpu.start()
        client_cpu.start()
        await asyncio.sleep(seconds)
        server = self.server_cpu.percent()
        client = client_cpu.percent()
        after = await scrape(self.admin)
        statements = after["conveyor_db_statements"] - before["conveyor_db_statements"]
        return {
            "idle_seconds": seconds,
            "idle_server_cpu_pct": server,
            "idle_client_cpu_pct": client,
            "idle_statements": statements,
            "idle_statements_per_s": statements / seconds,
            "server_rss_mib": self.server_cpu.rss_mib(),
        }

    async def write(self, clients: SseClients, *, rate: float, seconds: float) -> dict[str, Any]:
        """A few unmeasured events (the first write after a quiet spell), then `rate`
        events a second for `seconds`; what `clients` received of the latter."""
        events_path = f"{self.jobs_path}/{self.job_id}/events"
        await write_events(
            self.worker,
            events_path,
            self.lease_id,
            rate=rate,
            seconds=WARMUP_EVENTS / rate,
            first=-WARMUP_EVENTS - self._written,
        )
        await asyncio.sleep(0.2)
        await clients.reset()
        client_cpu = CpuClock(clients.process.pid)
        self.server_cpu.start()
        client_cpu.start()
        posts = await write_events(
            self.worker, events_path, self.lease_id, rate=rate, seconds=seconds, first=self._written
        )
        self._written += len(posts)
        figures = await clients.collect(len(posts), within=30)
        result = {
            "server_cpu_pct": self.server_cpu.percent(),
            "client_cpu_pct": client_cpu.percent(),
            "events": len(posts),
            "rate": rate,
            "post_p50_ms": percentile(posts, 0.5),
            "post_p99_ms": percentile(posts, 0.99),
            "open_seconds": clients.open_seconds,
            **figures,
        }
        if figures["missing"] or not figures["complete"]:
            raise RuntimeError(
                f"{figures['missing']} of {figures['streams'] * len(posts)} events never "
                f"arrived (dropped streams: {figures['dropped']}, errors: {figures['errors']})"
            )
        return result
