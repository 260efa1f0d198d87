"""The `sse-fanout` scenario's client processes: N followers of a workspace's event stream,
and a producer creating jobs at full speed. Both are plain keep-alive HTTP/1.1 sockets on
asyncio (no HTTP library), so that the clients cost far less than the server they load.

Followers: `python -m bench.fanout_clients follow --port P --path PATH --token T
--streams N --measured M --out FILE`. Every stream counts the events it receives (a
`bytes.count` over what arrives, no parsing); `--measured` of them (spread over the N) also
parse every event's `timestamp` and note `time.time()` when its bytes arrived, so a sample
is arrival - event timestamp (the event's transaction time on the database's clock: the
same machine). A stream dropped by the server (`stream.dropped`) reconnects at once with
`Last-Event-ID`, as EventSource would, and is counted (`reconnects`). Driven over stdin/stdout:

    -> "open N SECONDS"           every stream answered 200 and sent its first line
    <- "expect TOTAL TIMEOUT"     wait until every stream has TOTAL events (or the timeout)
    -> "done"                     figures written to FILE (JSON)
    <- "close"

Producer: `python -m bench.fanout_clients produce --port P --path PATH --token T
--connections C --warmup W --seconds S --out FILE`: W creates (not timed), "warm", then
on "go" POSTs one job per request on each of C connections for S seconds; "done" and the
figures (creates, answers that were not 201, request percentiles, its own CPU) in FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import resource
import sys
import time
from array import array
from pathlib import Path
from typing import Any, cast

from bench.measure import percentile

OPENING_AT_ONCE = 50
EVENT_MARK = b"\nevent: job."
"""Every frame of a job event has it once (`id: …\\nevent: job.created\\ndata: …`): the
scenario writes no other events; pings, control events (`stream.dropped`) and the bare
starting `id:` do not have it."""
TIMESTAMP = b'"timestamp":"'


def write(path: Path, figures: dict[str, Any]) -> None:
    path.write_text(json.dumps(figures))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- followers ------------------------------------------------------------------------------


class Follower(asyncio.Protocol):
    """One workspace stream. Counts events across reads (a mark split between two reads
    is found by keeping the last few bytes); a measured one also de-chunks and parses."""

    def __init__(self, followers: Followers, measured: bool) -> None:
        self.followers = followers
        self.measured = measured
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.events = 0
        self.reads = 0
        self.last_id: bytes | None = None
        self.reconnects = 0
        self.lags = array("d")
        self.transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._in_body = False
        self._tail = b""
        self._raw = bytearray()
        self._frames = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.followers.request(self.last_id))

    def data_received(self, data: bytes) -> None:
        received = time.time()
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._head[: self._head.find(b"\r\n")]).split(b" ", 2)
            data = bytes(self._head[end + 4 :])
            self._head.clear()
            if len(status) < 2 or status[1] != b"200":
                self._fail(f"stream answered {status!r}")
                return
            self._in_body = True
            if not self.opened.done():
                self.opened.set_result(None)
        self.reads += 1
        window = self._tail + data
        found = window.count(EVENT_MARK)
        if found:
            self.events += found
            self.followers.changed.set()
        self._tail = window[-(len(EVENT_MARK) - 1) :]  # too short to hold a whole mark
        mark = data.rfind(b"id: ")
        if mark >= 0:
            end = data.find(b"\n", mark)
            if end > 0:
                self.last_id = data[mark + 4 : end]
        if self.measured:
            self._measure(received, data)

    def _measure(self, received: float, data: bytes) -> None:
        self._raw += data
        raw = self._raw
        while True:
            line_end = raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(bytes(raw[:line_end]).split(b";")[0], 16)
            start = line_end + 2
            if size == 0 or len(raw) < start + size + 2:
                break
            self._frames += raw[start : start + size]
            del raw[: start + size + 2]
        frames = self._frames
        position = 0
        while (found := frames.find(TIMESTAMP, position)) >= 0:
            start = found + len(TIMESTAMP)
            end = frames.find(b'"', start)
            if end < 0:
                break
            stamp = datetime.datetime.fromisoformat(frames[start:end].decode())
            self.lags.append((received - stamp.timestamp()) * 1000)
            position = end
        del frames[:position]

    def _fail(self, reason: str) -> None:
        self.followers.errors.append(reason)
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(reason))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"stream closed before it opened: {exc!r}"))
            return
        if not self.followers.closing:
            # Dropped (`stream.dropped`: it fell behind) or cut: resume after the last
            # event, as EventSource does.
            self.reconnects += 1
            self._in_body, self._tail = False, b""
            self._raw.clear()
            self._frames.clear()
            asyncio.get_running_loop().create_task(self.followers.connect(self))


class Followers:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.changed = asyncio.Event()
        self.errors: list[str] = []
        self.closing = False
        self.streams: list[Follower] = []

    def request(self, last_id: bytes | None) -> bytes:
        resume = b"Last-Event-ID: " + last_id + b"\r\n" if last_id else b""
        return (
            (
                f"GET {self.args.path} HTTP/1.1\r\nHost: {self.args.host}:{self.args.port}\r\n"
                f"Authorization: Bearer {self.args.token}\r\nAccept: text/event-stream\r\n"
            ).encode()
            + resume
            + b"\r\n"
        )

    async def connect(self, stream: Follower) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: stream, self.args.host, self.args.port)
        except OSError as error:
            self.errors.append(f"reconnect failed: {error!r}")

    async def open(self) -> None:
        count, measured = self.args.streams, min(self.args.measured, self.args.streams)
        every = count / measured if measured else 0
        chosen = {int(n * every) for n in range(measured)}
        self.streams = [Follower(self, n in chosen) for n in range(count)]
        gate = asyncio.Semaphore(OPENING_AT_ONCE)

        async def one(stream: Follower) -> None:
            async with gate:
                await self.connect(stream)
                await asyncio.wait_for(stream.opened, 60)

        await asyncio.gather(*(one(stream) for stream in self.streams))

    async def expect(self, total: int, within: float) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + within
        while min(stream.events for stream in self.streams) < total:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.2))
            except TimeoutError:
                continue
        lags = [lag for stream in self.streams for lag in stream.lags]
        counts = [stream.events for stream in self.streams]
        return {
            "streams": len(self.streams),
            "measured_streams": sum(stream.measured for stream in self.streams),
            "events_expected_per_stream": total,
            "events_min": min(counts),
            "events_max": max(counts),
            "complete": min(counts) >= total,
            "settled_seconds": time.monotonic() - started,
            "reconnects": sum(stream.reconnects for stream in self.streams),
            # How many events a read carried: what the server wrote together, roughly (a
            # read may hold several writes when the client falls behind).
            "events_per_read": sum(counts) / max(1, sum(s.reads for s in self.streams)),
            "errors": self.errors[:10],
            "samples": len(lags),
            "lag_p50_ms": percentile(lags, 0.50),
            "lag_p90_ms": percentile(lags, 0.90),
            "lag_p99_ms": percentile(lags, 0.99),
            "lag_max_ms": max(lags) if lags else float("nan"),
            "cpu_seconds": cpu_seconds(),
        }

    def close(self) -> None:
        self.closing = True
        for stream in self.streams:
            if stream.transport is not None:
                stream.transport.close()


async def follow(args: argparse.Namespace) -> None:
    followers = Followers(args)
    started = time.monotonic()
    try:
        await followers.open()
    except Exception as error:
        print(f"failed {type(error).__name__}: {error}", flush=True)
        return
    print(f"open {len(followers.streams)} {time.monotonic() - started:.3f}", flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "close":
            break
        if line[0] == "expect":
            figures = await followers.expect(int(line[1]), float(line[2]))
            write(Path(args.out), figures)
            print("done", flush=True)
    followers.close()
    await asyncio.sleep(0.05)


# -- producer -------------------------------------------------------------------------------


async def produce(args: argparse.Namespace) -> None:
    body = json.dumps({"type": args.job_type, "payload": {"i": 0}}).encode()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Authorization: Bearer {args.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    connections = [
        await asyncio.open_connection(args.host, args.port) for _ in range(args.connections)
    ]
    created = 0
    refused: dict[str, int] = {}
    durations = array("d")

    async def post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal created
        began = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await reader.readexactly(length)
        durations.append((time.perf_counter() - began) * 1000)
        status = head[9:12]
        if status == b"201":
            created += 1
        else:
            refused[status.decode()] = refused.get(status.decode(), 0) + 1

    async def warm(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for _ in range(n):
            await post(reader, writer)

    share = -(-args.warmup // args.connections)
    await asyncio.gather(*(warm(r, w, share) for r, w in connections))
    warmed = created
    print(f"warm {warmed}", flush=True)
    if (await asyncio.to_thread(sys.stdin.readline)).strip() != "go":
        return
    created, refused, durations = 0, {}, array("d")
    deadline = time.monotonic() + args.seconds
    cpu_before = cpu_seconds()
    began = time.perf_counter()

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.monotonic() < deadline:
            await post(reader, writer)

    await asyncio.gather(*(loop(r, w) for r, w in connections))
    elapsed = time.perf_counter() - began
    figures = {
        "warmup_created": warmed,
        "created": created,
        "refused": refused,
        "seconds": elapsed,
        "creates_per_s": created / elapsed,
        "request_p50_ms": percentile(durations, 0.5),
        "request_p99_ms": percentile(durations, 0.99),
        "cpu_pct": 100 * (cpu_seconds() - cpu_before) / elapsed,
    }
    for _, writer in connections:
        writer.close()
    write(Path(args.out), figures)
    print("done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("follow", "produce"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--streams", type=int, default=0)
    parser.add_argument("--measured", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--job-type", default="bench.noop")
    args = parser.parse_args()
    run = follow if args.role == "follow" else produce
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
