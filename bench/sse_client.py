"""The SSE scenarios' clients, in a process of their own: N event streams on one job, each a
plain keep-alive HTTP/1.1 socket read by an `asyncio.Protocol` (no HTTP library: with a
thousand streams the client must cost far less than the server it measures).

Every `bench.tick` event carries `payload.sent` (`time.time()` just before the writer's
POST); a stream notes `time.time()` when the bytes carrying the event arrive
(`data_received`, before any parsing), so one sample is receive time - sent, per stream
per event.

The harness drives it over stdin/stdout:

    python -m bench.sse_client --port P --path PATH --token T --streams N --out FILE
                               [--others FILE]   (more streams, one per path in FILE)
    -> "open N SECONDS"          every stream answered 200 and sent its first line
    <- "expect COUNT TIMEOUT"    wait until each of the N streams on PATH has COUNT ticks
                                 (or the timeout)
    -> "done"                    figures written to FILE (JSON)
    <- "reset"                   forget the ticks received so far
    -> "ok"
    <- "close"                   close every socket and exit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from array import array
from pathlib import Path
from typing import Any, cast

import orjson

from bench.measure import percentile

OPENING_AT_ONCE = 50
"""Streams opened concurrently (each costs the server a key check and two reads)."""
TICK = b"bench.tick"


class Collector:
    def __init__(self) -> None:
        self.samples = array("d")
        """Receive - sent, in ms, every stream and event."""
        self.last_arrival: dict[int, float] = {}
        """Per event (payload.n): when the last stream received it, minus sent, in ms."""
        self.dropped = 0
        self.errors: list[str] = []
        self.changed = asyncio.Event()

    def reset(self) -> None:
        self.samples = array("d")
        self.last_arrival.clear()

    def tick(self, received: float, data: bytes) -> bool:
        """Record one tick; False for a warm-up tick (not counted)."""
        payload = orjson.loads(data)["payload"]
        number = int(payload["n"])
        if number < 0:
            return False  # a warm-up event
        late = (received - payload["sent"]) * 1000
        self.samples.append(late)
        if late > self.last_arrival.get(number, -1e9):
            self.last_arrival[number] = late
        return True


class Stream(asyncio.Protocol):
    """One SSE stream: parses the response head, de-chunks the body, splits events."""

    def __init__(self, request: bytes, collector: Collector) -> None:
        self.request = request
        self.collector = collector
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ticks = 0
        self.transport: asyncio.Transport | None = None
        self._head = bytearray()
        self._in_body = False
        self._chunked = False
        self._raw = bytearray()
        self._events = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        received = time.time()
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._head[:end]).decode("latin-1").split("\r\n")
            rest = bytes(self._head[end + 4 :])
            self._head.clear()
            status = head[0].split(" ", 2)
            if len(status) < 2 or status[1] != "200":
                self._fail(f"stream answered {head[0]!r}")
                return
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])
            }
            self._chunked = headers.get("transfer-encoding", "").lower() == "chunked"
            self._in_body = True
            data = rest
        if self._chunked:
            self._raw += data
            self._dechunk()
        else:
            self._events += data
        self._split(received)

    def _dechunk(self) -> None:
        raw = self._raw
        while True:
            line_end = raw.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(raw[:line_end]).split(b";")[0], 16)
            if size == 0:
                raw.clear()
                return
            start = line_end + 2
            if len(raw) < start + size + 2:
                return
            self._events += raw[start : start + size]
            del raw[: start + size + 2]

    def _split(self, received: float) -> None:
        events = self._events
        while True:
            end = events.find(b"\n\n")
            if end < 0:
                return
            block = bytes(events[:end])
            del events[: end + 2]
            if not self.opened.done() and block.startswith(b"retry:"):
                self.opened.set_result(None)
                continue
            if TICK not in block:
                if b"event: stream.dropped" in block:
                    self.collector.dropped += 1
                continue
            for line in block.split(b"\n"):
                if line.startswith(b"data: ") and self.collector.tick(received, line[6:]):
                    self.ticks += 1
                    self.collector.changed.set()

    def _fail(self, reason: str) -> None:
        self.collector.errors.append(reason)
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(reason))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(RuntimeError(f"stream closed before it opened: {exc!r}"))


async def open_streams(
    args: argparse.Namespace, paths: list[str], collector: Collector
) -> list[Stream]:
    """One stream per path, in order."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(OPENING_AT_ONCE)
    streams = [
        Stream(
            (
                f"GET {path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
                f"Authorization: Bearer {args.token}\r\nAccept: text/event-stream\r\n"
                "Connection: keep-alive\r\n\r\n"
            ).encode(),
            collector,
        )
        for path in paths
    ]

    async def one(stream: Stream) -> None:
        async with gate:
            await loop.create_connection(lambda: stream, args.host, args.port)
            await asyncio.wait_for(stream.opened, 60)

    await asyncio.gather(*(one(stream) for stream in streams))
    return streams


async def wait_for_ticks(
    streams: list[Stream], collector: Collector, count: int, within: float
) -> bool:
    deadline = time.monotonic() + within
    while min(s.ticks for s in streams) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        collector.changed.clear()
        try:
            await asyncio.wait_for(collector.changed.wait(), min(remaining, 0.2))
        except TimeoutError:
            continue
    return True


def summary(
    streams: list[Stream], collector: Collector, expected: int, complete: bool
) -> dict[str, Any]:
    samples = list(collector.samples)
    fanout = list(collector.last_arrival.values())
    return {
        "streams": len(streams),
        "events_expected_per_stream": expected,
        "samples": len(samples),
        "missing": len(streams) * expected - len(samples),
        "complete": complete,
        "dropped": collector.dropped,
        "errors": collector.errors[:10],
        "p50_ms": percentile(samples, 0.50),
        "p90_ms": percentile(samples, 0.90),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": max(samples) if samples else float("nan"),
        "min_ms": min(samples) if samples else float("nan"),
        "last_stream_p50_ms": percentile(fanout, 0.50),
        "last_stream_p99_ms": percentile(fanout, 0.99),
    }


def write(path: Path, figures: dict[str, Any]) -> None:
    path.write_text(json.dumps(figures))


async def main_async(args: argparse.Namespace, others: list[str]) -> None:
    collector = Collector()
    started = time.monotonic()
    try:
        every = await open_streams(args, [args.path] * args.streams + others, collector)
    except Exception as error:
        print(f"failed {type(error).__name__}: {error}", flush=True)
        return
    streams = every[: args.streams]
    print(f"open {len(every)} {time.monotonic() - started:.3f}", flush=True)
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "close":
            break
        if line[0] == "reset":
            collector.reset()
            for stream in streams:
                stream.ticks = 0
            print("ok", flush=True)
        if line[0] == "expect":
            count, within = int(line[1]), float(line[2])
            complete = await wait_for_ticks(streams, collector, count, within)
            write(Path(args.out), summary(streams, collector, count, complete))
            print("done", flush=True)
    for stream in every:
        if stream.transport is not None:
            stream.transport.close()
    await asyncio.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--others", help="a file of more paths to stream, one per line")
    args = parser.parse_args()
    others = Path(args.others).read_text().split() if args.others else []
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_async(args, others))
    else:
        uvloop.run(main_async(args, others))


if __name__ == "__main__":
    main()
