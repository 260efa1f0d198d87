"""Single-job creates over HTTP driven by wrk (C, one event loop per thread), so the figure
is the server's, not the client's: in Python, 8 httpx producers cost more CPU than the
server they load on two cores.

    wrk -t THREADS -c CONNECTIONS -d SECONDS -s post.lua URL

The Lua script POSTs one job per request, counts every answer that is not 201 (a run with
any is refused), and prints one machine-readable line at the end.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"

local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_created = 0
  created = 0
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    not_created = not_created + 1
  end
end

function done(summary, latency, requests)
  local bad, good = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_created")
    good = good + thread:get("created")
  end
  io.write(string.format(
    "BENCH requests=%d created=%d not_created=%d duration_us=%d connect=%d read=%d " ..
    "write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\\n",
    summary.requests, good, bad, summary.duration, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    created: int
    not_created: int
    seconds: float
    socket_errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: float
    """CPU wrk itself used (user + system)."""

    @property
    def per_second(self) -> float:
        return self.created / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "created": self.created,
            "not_created": self.not_created,
            "seconds": self.seconds,
            "socket_errors": self.socket_errors,
            "request_p50_ms": self.p50_ms,
            "request_p99_ms": self.p99_ms,
            "request_max_ms": self.max_ms,
            "wrk_cpu_pct": 100 * self.cpu_seconds / self.seconds,
        }


def write_script(path: Path, token: str, body: str) -> Path:
    path.write_text(SCRIPT.format(token=token, body=body))
    return path


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    url: str, script: Path, *, threads: int, connections: int, seconds: float
) -> WrkResult:
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    cpu_before = _children_cpu()
    process = await asyncio.create_subprocess_exec(
        binary,
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    cpu = _children_cpu() - cpu_before
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {process.returncode}): {err.decode()[-2000:]}")
    lines = [line for line in out.decode().splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(f"wrk printed no result: {out.decode()[-2000:]}")
    fields = dict(part.split("=", 1) for part in lines[-1].split()[1:])
    values = {key: int(value) for key, value in fields.items()}
    return WrkResult(
        requests=values["requests"],
        created=values["created"],
        not_created=values["not_created"],
        seconds=values["duration_us"] / 1e6,
        socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        cpu_seconds=cpu,
    )
