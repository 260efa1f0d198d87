"""The `limit-hammer` monitor, a process of its own:

    python -m bench.limit_monitor DATABASE_URL WORKSPACE_ID KEY STATUS

counts the jobs of one workspace and concurrency key in STATUS (the leased status, given by
the harness from Conveyor's domain) as fast as it can, one statement after the other on
one connection, until a line `stop` arrives on stdin. It prints `ready` after its first
count, and at the end one JSON line: the largest count, how many counts it made, over how
long, and how many counts saw each number.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import time
from collections import Counter
from typing import Any

import asyncpg

from conveyor.store.urls import DatabaseURL

COUNT_SQL = (
    "SELECT count(*) FROM jobs WHERE workspace_id = {ws} AND concurrency_key = {key} "
    "AND status = {status}"
)


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.started = time.perf_counter()

    def add(self, count: int) -> None:
        self.counts[count] += 1

    def report(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        polls = sum(self.counts.values())
        return {
            "max": max(self.counts, default=0),
            "polls": polls,
            "seconds": elapsed,
            "polls_per_s": polls / elapsed if elapsed > 0 else 0.0,
            "histogram": {str(n): self.counts[n] for n in sorted(self.counts)},
        }


def watch_stdin(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


async def count_postgres(url: str, params: tuple[str, str, str], stop: threading.Event) -> Tally:
    connection = await asyncpg.connect(url)
    try:
        statement = await connection.prepare(COUNT_SQL.format(ws="$1::uuid", key="$2", status="$3"))
        tally = Tally()
        tally.add(int(await statement.fetchval(*params)))
        print("ready", flush=True)
        while not stop.is_set():
            tally.add(int(await statement.fetchval(*params)))
        return tally
    finally:
        await connection.close()


def count_sqlite(path: str, params: tuple[str, str, str], stop: threading.Event) -> Tally:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA busy_timeout = 5000")
        sql = COUNT_SQL.format(ws="?", key="?", status="?")
        tally = Tally()
        tally.add(int(connection.execute(sql, params).fetchone()[0]))
        print("ready", flush=True)
        while not stop.is_set():
            tally.add(int(connection.execute(sql, params).fetchone()[0]))
        return tally
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    url_text, workspace, key, status = argv
    url = DatabaseURL.parse(url_text)
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    params = (workspace, key, status)
    if url.kind == "postgresql":
        tally = asyncio.run(count_postgres(url.url, params, stop))
    else:
        tally = count_sqlite(str(url.sqlite_path), params, stop)
    print(json.dumps(tally.report()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
