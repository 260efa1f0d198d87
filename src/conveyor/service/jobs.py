"""Job use cases for clients, workers and the reaper, behind one service face.

Two shapes of write, both safe under any concurrency:

* decide, then compare-and-set: read the job, let the domain decide (which raises when
  the move is illegal), store the change guarded by the version read and the statuses the
  transition table allows. A miss means somebody else wrote first: decide again on a
  fresh read, under `retry_on_conflict` (`core.py`).
* guarded statement: the hot paths (claim, complete, heartbeat, reports) go straight to
  a write guarded by lease and status; only when it misses is the job read, to explain
  why (lease lost, already completed, not found) with the domain's own rules.

Each use case lives in a module of its own: `creation.py`, `reads.py`, `claims.py`,
`reports.py` (a worker's), `status_changes.py` (a client's), `reaper.py`.
"""

from __future__ import annotations

from conveyor.service.claims import JobClaims
from conveyor.service.core import DEFAULT_POLL_INTERVAL
from conveyor.service.creation import JobCreation
from conveyor.service.observer import JobObserver, Unobserved
from conveyor.service.reads import MAX_LIST_LIMIT, JobDetail, JobReads, Page
from conveyor.service.reaper import LeaseReaper
from conveyor.service.reports import CompletionOutcome, WorkerReports
from conveyor.service.status_changes import StatusChanges
from conveyor.store.projections import AS_CLAIMED_JOB, AS_COMPLETED_JOB, AS_JOB

__all__ = [
    "AS_CLAIMED_JOB",
    "AS_COMPLETED_JOB",
    "AS_JOB",
    "DEFAULT_POLL_INTERVAL",
    "MAX_LIST_LIMIT",
    "CompletionOutcome",
    "JobDetail",
    "JobObserver",
    "JobService",
    "Page",
    "Unobserved",
]


class JobService(JobCreation, JobReads, JobClaims, WorkerReports, StatusChanges, LeaseReaper):
    """Every job use case, on one store."""
