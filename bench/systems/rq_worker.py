"""One RQ worker process for the benchmark: a `SimpleWorker` (jobs run in the worker
process, no fork per job), which is what `rq worker -w rq.worker.SimpleWorker` runs.

It announces itself on a ready list, optionally waits for a go signal (so every worker of a
drain starts together), works, and on exit writes a JSON file: when each job started, and
when its last job's outcome was stored in Redis.

    python -m bench.systems.rq_worker --redis URL --queue NAME --out FILE [--go KEY] [--burst]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker

from bench.systems import rq_jobs


class TimedWorker(SimpleWorker):
    """Notes when each job's outcome has been stored (the end of `execute_job`)."""

    last_done = 0.0
    done = 0

    def execute_job(self, job: Any, queue: Any) -> None:
        super().execute_job(job, queue)
        self.last_done = time.time()
        self.done += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True, help="list to push our pid to once ready")
    parser.add_argument("--go", help="list to pop a go token from before working")
    parser.add_argument("--burst", action="store_true")
    args = parser.parse_args()

    connection = Redis.from_url(args.redis)
    worker = TimedWorker([Queue(args.queue, connection=connection)], connection=connection)
    connection.rpush(args.ready, os.getpid())
    if args.go:
        connection.blpop([args.go], timeout=0)
    worker.work(burst=args.burst, logging_level="WARNING")
    with open(args.out, "w") as out:
        json.dump(
            {"starts": rq_jobs.STARTS, "last_done": worker.last_done, "done": worker.done}, out
        )


if __name__ == "__main__":
    main()
