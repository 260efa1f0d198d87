"""Drill: the disk under a SQLite database fills up while a client creates jobs over one
kept-alive connection; then space is freed. The database lives on a tmpfs of its own (a
few MiB, mounted for the drill: needs root), filled by a file until a few pages are left.

Held today, asserted hard: no acknowledged job is lost, the database is not corrupted
(`PRAGMA integrity_check`), a create left in doubt by an error is settled by sending it
again with its idempotency key, and once space is freed the same server takes work again
without a restart. Not held yet (branch `faults`): the full disk answers a 500 and the
connection is reset after it."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conveyor.store.urls import DatabaseURL
from tests.conftest import in_own_thread
from tests.drills.drill import JOB, WORKSPACE, Drill

pytestmark = pytest.mark.slow

DISK = "size=8m"
HEADROOM = 160 * 1024
"""What the filler leaves free: room for a handful of commits."""
CREATES = 300
AFTER_FIRST_ERROR = 12
"""Creates sent on the kept-alive connection after the first that failed."""
AFTER_FREEING = 5


@dataclass
class Outcome:
    acknowledged: dict[str, str] = field(default_factory=dict)
    """Idempotency key -> job id, for every create answered 2xx (before or after freeing)."""
    failed: list[tuple[str, str]] = field(default_factory=list)
    """(key, what came back) for every create that failed while the disk was full: an HTTP
    status with its problem type, or the transport error."""
    after_freeing: list[int] = field(default_factory=list)
    resent: dict[str, int] = field(default_factory=dict)
    integrity_while_serving: list[str] = field(default_factory=list)
    integrity_after_stop: list[str] = field(default_factory=list)
    stored: dict[str, str] = field(default_factory=dict)
    """Idempotency key -> job id, as the database has them at the end."""
    server_log: str = ""


@contextlib.contextmanager
def small_disk(directory: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("the disk-full drill mounts a small tmpfs, which needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", DISK, "conveyor-drill", str(directory)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], check=True)


def fill(disk: Path, headroom: int) -> Path:
    """A file taking every byte of `disk` but `headroom`."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    # Unbuffered: a buffered file keeps the bytes of the write that found the disk full
    # and fails again on close, whenever the free space is not a whole number of chunks.
    with filler.open("wb", buffering=0) as output:
        try:
            while True:
                output.write(chunk)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    size = filler.stat().st_size
    with filler.open("r+b") as output:
        output.truncate(max(0, size - headroom))
    return filler


def integrity(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]


def describe(response: httpx.Response) -> str:
    kind = ""
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        kind = f" {response.json().get('type')}"
    return f"{response.status_code}{kind}"


def run_drill(template: Path, directory: Path) -> Outcome:
    outcome = Outcome()
    with small_disk(directory / "disk") as disk:
        database = DatabaseURL.parse(f"sqlite:///{disk / 'conveyor.db'}")
        shutil.copyfile(template, database.sqlite_path)
        drill = asyncio.run(Drill.prepare(database, directory))
        body = {**JOB, "payload": {"seconds": 0}}

        def create(http: httpx.Client, key: str) -> httpx.Response | str:
            try:
                response = http.post("/jobs", json={**body, "idempotency_key": key})
            except httpx.TransportError as error:
                return f"{type(error).__name__}: {error}"
            if response.status_code in (200, 201):
                outcome.acknowledged[key] = str(response.json()["id"])
            return response

        def status(answer: httpx.Response | str) -> int:
            return answer.status_code if isinstance(answer, httpx.Response) else 0

        try:
            with drill.server("server") as (url, process):

                def client() -> httpx.Client:
                    return httpx.Client(
                        base_url=f"{url}/v1/workspaces/{WORKSPACE}",
                        headers={"Authorization": f"Bearer {drill.client_key}"},
                        timeout=10,
                    )

                filler = fill(disk, HEADROOM)
                with client() as kept_alive:
                    left = AFTER_FIRST_ERROR
                    for number in range(CREATES):
                        key = f"full-{number}"
                        answer = create(kept_alive, key)
                        if status(answer) not in (200, 201):
                            what = answer if isinstance(answer, str) else describe(answer)
                            outcome.failed.append((key, what))
                        if outcome.failed:
                            left -= 1
                        if left == 0:
                            break

                filler.unlink()
                # A new connection: the kept-alive one may be reset after an error (which
                # the xfail test below is about), and that is not what this part asks.
                with client() as fresh:
                    for number in range(AFTER_FREEING):
                        outcome.after_freeing.append(status(create(fresh, f"freed-{number}")))
                    for key, _ in outcome.failed:
                        outcome.resent[key] = status(create(fresh, key))
                outcome.integrity_while_serving = integrity(database.sqlite_path)
                assert process.poll() is None, "the server died of the full disk"
        finally:
            outcome.server_log = (directory / "server.log").read_text(errors="replace")
        outcome.integrity_after_stop = integrity(database.sqlite_path)
        with contextlib.closing(sqlite3.connect(database.sqlite_path)) as connection:
            outcome.stored = dict(
                connection.execute("SELECT idempotency_key, id FROM jobs").fetchall()
            )
    return outcome


@pytest.fixture(scope="module")
def disk_full(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    directory = tmp_path_factory.mktemp("disk-full")
    (directory / "disk").mkdir()
    outcome = in_own_thread(lambda: run_drill(sqlite_template, directory))
    assert outcome.failed, (
        f"the disk never filled up: {len(outcome.acknowledged)} creates all succeeded"
    )
    return outcome


def test_a_full_disk_loses_no_acknowledged_job_and_corrupts_nothing(disk_full: Outcome) -> None:
    assert disk_full.integrity_while_serving == ["ok"], disk_full.integrity_while_serving
    assert disk_full.integrity_after_stop == ["ok"], disk_full.integrity_after_stop
    lost = {
        key: job_id
        for key, job_id in disk_full.acknowledged.items()
        if disk_full.stored.get(key) != job_id
    }
    assert not lost, f"acknowledged creates missing from the database: {lost}"


def test_once_space_is_freed_the_same_server_takes_work_again(disk_full: Outcome) -> None:
    assert disk_full.after_freeing == [201] * AFTER_FREEING, (
        f"creates after freeing space answered {disk_full.after_freeing}"
    )
    # A create that failed on the full disk may or may not have committed: sent again with
    # its idempotency key, it is created (201) or found (200), once.
    refused = {key: status for key, status in disk_full.resent.items() if status not in (200, 201)}
    assert not refused, f"creates sent again after freeing space answered {refused}"
    assert set(disk_full.stored) == set(disk_full.acknowledged), (
        "the database's jobs are not the acknowledged creates: "
        f"{sorted(set(disk_full.stored) ^ set(disk_full.acknowledged))}"
    )


def test_a_full_disk_answers_a_clear_error_on_a_connection_that_stays_usable(
    disk_full: Outcome,
) -> None:
    answers = [what for _, what in disk_full.failed]
    assert not [what for what in answers if what.startswith("500")], (
        f"a full disk answered 500 (an internal error) to creates: {answers}"
    )
    assert not [what for what in answers if not what[:1].isdigit()], (
        f"the connection broke after an error on the full disk: {answers}"
    )
