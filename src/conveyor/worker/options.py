"""How a worker is set up, and what it counts."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field

from conveyor.domain.jobs import DEFAULT_LEASE_SECONDS


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass
class WorkerOptions:
    concurrency: int = 4
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    heartbeat_seconds: float | None = None
    """Default: a third of the lease, so two heartbeats may be lost before it runs out."""
    claim_wait_seconds: float = 10.0
    shutdown_grace_seconds: float = 30.0
    worker_id: str = field(default_factory=default_worker_id)
    types: list[str] | None = None
    """Job types to claim; default: those with a handler."""

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or self.lease_seconds / 3


@dataclass
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    released: int = 0
