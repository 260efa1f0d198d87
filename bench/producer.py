"""The latency scenarios' producer, in a process of its own: a client of the system under
test should not share an event loop (or a GIL) with the workers it is measuring.

The harness starts it with a JSON spec naming the system and how to reach it; it enqueues
the warm-up jobs, says `warm`, waits for `go` on stdin, produces the steady load, and
writes when it enqueued each job to the `--out` file.

    python -m bench.producer --spec JSON --rate R --seconds S --warmup N --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import WARMUP_BASE, ProducedLoad, produce_steadily
from bench.process import start_child
from bench.systems.base import Producer


async def open_producer(spec: dict[str, Any]) -> Producer:
    system = spec["system"]
    if system in ("conveyor", "conveyor-http"):
        from bench.systems.conveyor import producer_from_spec as conveyor

        return await conveyor(spec)
    if system == "procrastinate":
        from bench.systems.procrastinate_system import producer_from_spec as procrastinate

        return await procrastinate(spec)
    if system == "pgqueuer":
        from bench.systems.pgqueuer_system import producer_from_spec as pgqueuer

        return await pgqueuer(spec)
    if system == "rq":
        from bench.systems.rq_system import producer_from_spec as rq

        return await rq(spec)
    raise ValueError(f"no remote producer for {system}")


async def produce(args: argparse.Namespace) -> None:
    producer = await open_producer(json.loads(args.spec))
    try:
        await producer.enqueue_each(list(range(WARMUP_BASE, WARMUP_BASE + args.warmup)))
        print("warm", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() != "go":
            return
        load = await produce_steadily(
            lambda index: producer.enqueue_each([index]),
            producer.enqueue_batch,
            rate=args.rate,
            seconds=args.seconds,
        )
    finally:
        await producer.close()
    write_load(Path(args.out), load)


@dataclass
class RemoteProducer:
    """The harness's handle on a producer process."""

    process: asyncio.subprocess.Process
    out: Path

    @classmethod
    async def start(
        cls, spec: dict[str, Any], *, rate: float, seconds: float, warmup: int, workdir: Path
    ) -> RemoteProducer:
        out = workdir / f"producer-{os.getpid()}-{id(spec)}.json"
        process = await start_child(
            "bench.producer",
            "--spec",
            json.dumps(spec),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--warmup",
            str(warmup),
            "--out",
            str(out),
        )
        assert process.stdout is not None
        line = await process.stdout.readline()
        if line.strip() != b"warm":
            if process.returncode is None:
                process.kill()
            code = await process.wait()
            raise RuntimeError(f"the producer process did not start (exit {code})")
        return cls(process, out)

    async def run(self) -> ProducedLoad:
        """Produce the load; return when each job was enqueued."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()
        code = await self.process.wait()
        if code != 0:
            raise RuntimeError(f"the producer process failed (exit {code})")
        return await asyncio.to_thread(read_load, self.out)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def read_load(path: Path) -> ProducedLoad:
    notes = json.loads(path.read_text())
    path.unlink()
    return ProducedLoad(
        enqueued_at={int(index): when for index, when in notes["enqueued_at"].items()},
        started=notes["started"],
        finished=notes["finished"],
        behind_seconds=notes["behind_seconds"],
    )


def write_load(path: Path, load: ProducedLoad) -> None:
    path.write_text(
        json.dumps(
            {
                "enqueued_at": load.enqueued_at,
                "started": load.started,
                "finished": load.finished,
                "behind_seconds": load.behind_seconds,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(produce(args))
    else:
        uvloop.run(produce(args))


if __name__ == "__main__":
    main()
