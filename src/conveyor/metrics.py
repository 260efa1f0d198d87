"""Prometheus metrics: what `/metrics` exposes.

Each server runtime has its own registry (so several can live in one process, as in the
tests). Labels are bounded: job types and workspaces beyond MAX_LABELS each become
"other", HTTP routes are route templates (never ids), and no label ever holds a job id or
a key. Served only on loopback addresses unless a token is configured: the labels name
every workspace.

Counters and histograms count what this process did; the `conveyor_jobs` gauge (jobs not
finished yet) is read from the database, cached for a few seconds, so it is the same on
every process.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from conveyor.domain.jobs import ClaimedJob, CompletedJob, Job
from conveyor.store.limits import LimitCounts

MAX_LABELS: Final = 100
JOB_GAUGE_CACHE_SECONDS: Final = 5.0
DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
)  # fmt: skip


class BoundedLabels:
    """Label values as they come, at most MAX_LABELS of them per process; then "other"."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._known:
            return value
        if len(self._known) < MAX_LABELS:
            self._known.add(value)
            return value
        return "other"


class ReadAtScrape(Collector):
    """Gauges read from the database at most every few seconds however often Prometheus
    scrapes (`refresh` before each scrape; `collect` serves what was read last)."""

    def __init__(self) -> None:
        self._families: list[GaugeMetricFamily] = []
        self._read_at = 0.0

    async def refresh(self) -> None:
        if time.monotonic() - self._read_at < JOB_GAUGE_CACHE_SECONDS:
            return
        self._families = await self.read()
        self._read_at = time.monotonic()

    async def read(self) -> list[GaugeMetricFamily]:
        raise NotImplementedError

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield from self._families


class JobCounts(ReadAtScrape):
    """conveyor_jobs{workspace,type,status}: jobs not finished yet."""

    def __init__(
        self,
        read: Callable[[], Awaitable[list[tuple[str, str, str, int]]]],
        types: BoundedLabels,
        workspaces: BoundedLabels,
    ) -> None:
        super().__init__()
        self._read = read
        self._types = types
        self._workspaces = workspaces

    async def read(self) -> list[GaugeMetricFamily]:
        totals: dict[tuple[str, str, str], int] = {}
        for workspace, job_type, status, count in await self._read():
            labels = (self._workspaces(workspace), self._types(job_type), status)
            totals[labels] = totals.get(labels, 0) + count
        family = GaugeMetricFamily(
            "conveyor_jobs",
            "Jobs not finished yet (pending, queued, running) by workspace, type and status",
            labels=["workspace", "type", "status"],
        )
        for labels, count in totals.items():
            family.add_metric(list(labels), count)
        return [family]


class LimitGauges(ReadAtScrape):
    """Each limit's jobs: running and queued, its cap, whether it is paused."""

    def __init__(
        self, read: Callable[[], Awaitable[list[LimitCounts]]], workspaces: BoundedLabels
    ) -> None:
        super().__init__()
        self._read = read
        self._workspaces = workspaces
        self._names = BoundedLabels()

    async def read(self) -> list[GaugeMetricFamily]:
        labels = ["workspace", "limit"]
        running = GaugeMetricFamily(
            "conveyor_limit_running", "Jobs a limit governs that are running", labels=labels
        )
        queued = GaugeMetricFamily(
            "conveyor_limit_queued", "Jobs a limit governs that wait queued", labels=labels
        )
        cap = GaugeMetricFamily(
            "conveyor_limit_max_running", "A limit's max_running (absent: no cap)", labels=labels
        )
        paused = GaugeMetricFamily(
            "conveyor_limit_paused", "1 while a limit is paused", labels=labels
        )
        for counts in await self._read():
            which = [self._workspaces(counts.workspace), self._names(counts.limit.name)]
            running.add_metric(which, counts.running)
            queued.add_metric(which, counts.queued)
            paused.add_metric(which, 1 if counts.limit.paused else 0)
            if counts.limit.max_running is not None:
                cap.add_metric(which, counts.limit.max_running)
        return [running, queued, cap, paused]


class Metrics:
    def __init__(self) -> None:
        # No `*_created` series next to every counter: they double the output for nothing.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.types = BoundedLabels()
        r = self.registry
        self.created = Counter("conveyor_jobs_created", "Jobs created", ["type"], registry=r)
        self.claimed = Counter("conveyor_jobs_claimed", "Jobs claimed", ["type"], registry=r)
        self.completed = Counter("conveyor_jobs_completed", "Jobs completed", ["type"], registry=r)
        self.failed = Counter("conveyor_jobs_failed", "Jobs failed for good", ["type"], registry=r)
        self.retried = Counter(
            "conveyor_jobs_retried", "Failed attempts queued again", ["type"], registry=r
        )
        self.cancelled = Counter("conveyor_jobs_cancelled", "Jobs cancelled", ["type"], registry=r)
        self.lease_expiries = Counter(
            "conveyor_lease_expiries", "Leases taken back from silent workers", registry=r
        )
        self.conflict_retries = Counter(
            "conveyor_conflict_retries", "Writes retried after losing a race", registry=r
        )
        self.queue_wait = Histogram(
            "conveyor_job_queue_wait_seconds",
            "From when a job could run (run_at) to when a worker claimed it",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.run_duration = Histogram(
            "conveyor_job_run_seconds",
            "From claim to completion, for completed jobs",
            ["type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "conveyor_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "conveyor_http_request_duration_seconds",
            "Time to answer an HTTP request (streams excluded)",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.sse_streams = Gauge(
            "conveyor_sse_streams", "Event streams open on this process", registry=r
        )
        self.sse_disconnects = Counter(
            "conveyor_sse_clients_disconnected",
            "Event streams the server ended because their client did not keep up: "
            "slow (took no data within the send timeout), behind (fell more than the "
            "buffer behind; sent stream.dropped)",
            ["reason"],
            registry=r,
        )
        self.db_statements = Gauge(
            "conveyor_db_statements", "Statements sent to the database by this process", registry=r
        )
        self.read_at_scrape: list[ReadAtScrape] = []
        self._workspaces = BoundedLabels()
        self.pruned = Counter(
            "conveyor_jobs_pruned",
            "Finished jobs deleted by retention (with their steps and events)",
            ["workspace", "status"],
            registry=r,
        )

    def watch_job_counts(
        self, read: Callable[[], Awaitable[list[tuple[str, str, str, int]]]]
    ) -> None:
        self._read_at_scrape(JobCounts(read, self.types, self._workspaces))

    def watch_limits(self, read: Callable[[], Awaitable[list[LimitCounts]]]) -> None:
        self._read_at_scrape(LimitGauges(read, self._workspaces))

    def _read_at_scrape(self, collector: ReadAtScrape) -> None:
        self.read_at_scrape.append(collector)
        self.registry.register(collector)

    async def refresh(self) -> None:
        """Read the database-backed gauges (when they are old enough)."""
        for collector in self.read_at_scrape:
            await collector.refresh()

    # -- what the service reports ----------------------------------------------------------

    def jobs_created(self, jobs: Sequence[Job]) -> None:
        # Counted per type, not per job: a bulk create is hundreds of one type, and each
        # `labels(...).inc()` takes the metric's lock.
        for job_type, count in collections.Counter(job.type for job in jobs).items():
            self.created.labels(self.types(job_type)).inc(count)

    def jobs_claimed(self, jobs: Sequence[Job | ClaimedJob]) -> None:
        for job in jobs:
            label = self.types(job.type)
            self.claimed.labels(label).inc()
            if job.started_at is not None and job.run_at is not None:
                waited = (job.started_at - job.run_at).total_seconds()
                self.queue_wait.labels(label).observe(max(waited, 0.0))

    def jobs_completed(self, jobs: Sequence[Job | CompletedJob]) -> None:
        for job in jobs:
            label = self.types(job.type)
            self.completed.labels(label).inc()
            if job.started_at is not None and job.completed_at is not None:
                ran = (job.completed_at - job.started_at).total_seconds()
                self.run_duration.labels(label).observe(max(ran, 0.0))

    def job_settled(self, job: Job) -> None:
        """After a failure, cancel or lease expiry: count where the job ended up."""
        label = self.types(job.type)
        if job.status == "FAILED":
            self.failed.labels(label).inc()
        elif job.status == "QUEUED":
            self.retried.labels(label).inc()
        elif job.status == "CANCELLED":
            self.cancelled.labels(label).inc()

    def leases_expired(self, count: int) -> None:
        if count:
            self.lease_expiries.inc(count)

    def conflict_retried(self, _: BaseException) -> None:
        self.conflict_retries.inc()

    def jobs_pruned(self, workspace: str, status: str, count: int) -> None:
        self.pruned.labels(self._workspaces(workspace), status).inc(count)
